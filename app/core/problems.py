"""Render every error as application/problem+json (RFC 9457), Litestar's own ones included."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.core.errors import AppError

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://notifygw.dev/problems/"
log = logging.getLogger("notifygw.errors")


def problem_response(
    request: Request[Any, Any, Any],
    *,
    status: int,
    title: str,
    detail: str,
    slug: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[Any]:
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    request_id = request.scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(content=body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def app_error_handler(request: Request[Any, Any, Any], exc: AppError) -> Response[Any]:
    return problem_response(
        request,
        status=exc.status_code,
        title=exc.title,
        detail=exc.detail,
        slug=exc.type_slug,
        headers=exc.headers,
        errors=exc.errors,
        **exc.extra,
    )


_FIELD_IN_MESSAGE = re.compile(r"(?:unknown|missing required) field `([^`]+)`")


def _pointer(key: str | None, message: str) -> str:
    # msgspec reports "$.to.phone" / "$.scopes[0]"; RFC 6901 wants "/to/phone" / "/scopes/0".
    # msgspec does not name dict keys ("[...]"): those segments become "*".
    path = (key or "").removeprefix("$").removeprefix("data").replace("[...]", ".*").replace("[", ".").replace("]", "")
    parts = [p for p in path.split(".") if p]
    named = _FIELD_IN_MESSAGE.search(message)
    if named:  # the offending field is named in the message, below the reported path
        parts.append(named.group(1))
    return "/" + "/".join(parts)


def validation_handler(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors = []
    if isinstance(exc.extra, list):
        for item in exc.extra:
            if isinstance(item, dict):
                message = str(item.get("message", "invalid"))
                errors.append({"pointer": _pointer(item.get("key"), message), "detail": message})
    detail = errors[0]["detail"] if len(errors) == 1 else (exc.detail or "Request validation failed")
    # A body that is not even JSON is a malformed request (400); a JSON body of the wrong shape is 422.
    status = 400 if "decode" in (exc.detail or "").lower() or "malformed" in (exc.detail or "").lower() else 422
    return problem_response(
        request,
        status=status,
        title="Validation failed" if status == 422 else "Malformed request",
        detail=detail,
        slug="validation-failed" if status == 422 else "malformed-request",
        errors=errors or None,
    )


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    titles = {
        404: "Not found",
        405: "Method not allowed",
        413: "Request body too large",
        401: "Unauthenticated",
        403: "Forbidden",
        400: "Bad request",
        429: "Too many requests",
    }
    title = titles.get(status, exc.detail or "Error")
    detail = exc.detail or title
    if isinstance(exc, NotFoundException):
        detail = "No such resource"
    slug = title.lower().replace(" ", "-")
    return problem_response(request, status=status, title=title, detail=detail, slug=slug, headers=exc.headers)


def database_unavailable_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("database unavailable", extra={"error": type(exc).__name__})
    return problem_response(
        request,
        status=503,
        title="Service unavailable",
        detail="database unavailable",
        slug="unavailable",
        headers={"Retry-After": "5"},
    )


def database_busy_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # The database answered, but a lock stayed held past the wait allowed: contention, not an outage.
    log.warning("database busy", extra={"error": type(exc).__name__})
    return problem_response(
        request,
        status=503,
        title="Database busy",
        slug="database-busy",
        detail="the database stayed locked by other work past the lock wait allowed; retry shortly",
        headers={"Retry-After": "1"},
    )


# lock_not_available (lock_timeout), deadlock_detected, serialization_failure, query_canceled (statement_timeout).
_BUSY_SQLSTATES = {"55P03", "40P01", "40001", "57014"}


def _is_lock_timeout(exc: BaseException) -> bool:
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _BUSY_SQLSTATES:
        return True
    # SQLite: busy_timeout ran out waiting for another connection's write lock (SQLITE_BUSY / SQLITE_LOCKED).
    if getattr(orig, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return True
    return isinstance(exc, OperationalError) and str(orig).startswith(
        ("database is locked", "database table is locked")
    )


def _is_connection_error(exc: BaseException) -> bool:
    # PoolTimeout: every connection busy past pool_timeout; an overload, so 503 and Retry-After, not a 500.
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (ConnectionError, OSError, TimeoutError))


def _is_unstorable_text(exc: BaseException) -> bool:
    # SQLSTATE 22021 (text) and 22P05 (jsonb): PostgreSQL cannot hold U+0000, which query strings can carry.
    # JSON bodies are refused earlier, with a pointer (app.core.jsonbody); this is the net for the rest.
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in ("22021", "22P05")


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if _is_lock_timeout(exc):  # before the connection test: both arrive as OperationalError
        return database_busy_handler(request, exc)
    if _is_connection_error(exc):
        return database_unavailable_handler(request, exc)
    if _is_unstorable_text(exc):  # the client's text, not our fault: 422 rather than 500
        return problem_response(
            request,
            status=422,
            title="Validation failed",
            slug="validation-failed",
            detail="text may not contain NUL (U+0000) characters",
        )
    log.exception("unhandled error")
    return problem_response(
        request,
        status=HTTP_500_INTERNAL_SERVER_ERROR,
        title="Internal server error",
        detail="An unexpected error occurred",
        slug="internal",
    )


EXCEPTION_HANDLERS = {
    AppError: app_error_handler,
    ValidationException: validation_handler,
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}
