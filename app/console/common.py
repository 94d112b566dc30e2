"""What every console page shares: the signed-in admin (Ctx), the CSRF check on changing forms, the
error pages, and the small parsers of form and query values.

Each page group is one module with its own Controller under /console (app/console/controllers.py
lists them all in ROUTES); each uses HANDLERS, so a missing session redirects to the sign-in form, a
missing CSRF token is a 403 page, and an AppError (404 for another tenant's id) is its own page.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.response import Redirect
from litestar.types import ExceptionHandlersMap

from app.console import session as sessions
from app.console.views import page
from app.core.deps import DbSession
from app.core.errors import AppError, NotFound, ValidationFailed
from app.core.problems import _pointer
from tenants.auth import CANNOT_CHANGE_LIVE, CANNOT_READ_LIVE, Principal, refuse_test_key


class SignInRequired(Exception):
    """No live session: the page answers with a redirect to the sign-in form."""


class CsrfRefused(Exception):
    """A changing form without its session's CSRF token."""


def _to_sign_in(_request: Request[Any, Any, Any], _exc: Exception) -> Response[Any]:
    return Redirect("/console/sign-in", status_code=303)


def _csrf_refused(_request: Request[Any, Any, Any], _exc: Exception) -> Response[Any]:
    return page("error.html", status_code=403, title="Refused", message="This form has expired. Reload the page.")


def _app_error(_request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    status = getattr(exc, "status_code", 400)
    title = "Not found" if status == 404 else getattr(exc, "title", "Error")
    return page("error.html", status_code=status, title=title, message=getattr(exc, "detail", title))


HANDLERS: ExceptionHandlersMap = {
    SignInRequired: _to_sign_in,
    CsrfRefused: _csrf_refused,
    AppError: _app_error,
}


class Ctx:
    """The signed-in admin of one request: who they act as, and the token their forms carry."""

    def __init__(self, session: sessions.ConsoleSession, principal: Principal) -> None:
        self.session, self.principal = session, principal
        self.tenant = principal.tenant
        self.csrf = session.csrf

    def live_only(self, *, reading: bool = False) -> None:
        """403 for a test key, where the API refuses one: live configuration changes, live personal data."""
        refuse_test_key(self.principal, CANNOT_READ_LIVE if reading else CANNOT_CHANGE_LIVE)

    def view(self, name: str, *, status_code: int = 200, **context: Any) -> Response[str]:
        return page(name, status_code=status_code, csrf=self.csrf, principal=self.principal, **context)


async def signed_in(request: Request[Any, Any, Any], db: DbSession) -> Ctx:
    found = await sessions.resume(db, request.cookies.get(sessions.COOKIE))
    if found is None:
        raise SignInRequired
    return Ctx(*found)


async def changing(request: Request[Any, Any, Any], db: DbSession, *, live: bool = False) -> tuple[Ctx, dict[str, str]]:
    """A changing request: signed in, and carrying that session's CSRF token in its form. `live`: what it
    changes is live configuration or data, which a test key may not change (as on the API)."""
    ctx = await signed_in(request, db)
    form = await form_of(request)
    if not sessions.csrf_ok(ctx.csrf, form.get("csrf")):
        raise CsrfRefused
    if live:
        ctx.live_only()
    return ctx, form


async def form_of(request: Request[Any, Any, Any]) -> dict[str, str]:
    data = await request.form()
    return {k: v for k, v in data.items() if isinstance(v, str)}


async def form_lists(request: Request[Any, Any, Any], name: str) -> list[str]:
    """Every value of a repeated field (checkboxes)."""
    data = await request.form()
    try:
        return [str(v) for v in data.getall(name)]
    except KeyError:  # no box ticked: the field is absent
        return []


def uuid_or_404(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("not found") from None


def when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"not a date and time: {value}") from None


def pairs(text: str) -> dict[str, str]:
    """`name=Ava` lines (the forms' way to give a mapping) as a mapping."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip():
            out[name.strip()] = value.strip()
    return out


def words(text: str) -> list[str]:
    """Comma- or line-separated words, trimmed, empty ones dropped."""
    return [w.strip() for w in re.split(r"[,\n]", text) if w.strip()]


_AT = re.compile(r" - at (?:`key` in )?`(\$[^`]*)`$")  # "at `key` in `$.x`": a dict key in $.x


def pointer_of(exc: msgspec.ValidationError) -> str:
    """The JSON pointer of msgspec's error, made as the API makes it (app/core/problems.py): "$.a.b" → "/a/b"."""
    message = str(exc)
    found = _AT.search(message)
    return _pointer(found.group(1) if found else None, message)


def message_of(exc: msgspec.ValidationError) -> str:
    return _AT.sub("", str(exc))


def field_errors(exc: Exception) -> dict[str, str]:
    """pointer → message, from a 422 of a service (ValidationFailed with `errors`) or of msgspec."""
    if isinstance(exc, msgspec.ValidationError):
        return {pointer_of(exc): message_of(exc)}
    errors = getattr(exc, "errors", None) or []
    out = {str(e.get("pointer", "/")): str(e.get("detail", "")) for e in errors if isinstance(e, dict)}
    return out or {"/": str(getattr(exc, "detail", None) or exc)}
