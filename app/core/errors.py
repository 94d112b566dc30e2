"""One typed error tree; app.core.problems renders every member as RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status_code = 400
    title = "Bad request"
    type_slug = "bad-request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra


class ValidationFailed(AppError):
    """Payload validation; `errors` carries JSON pointers to the offending fields."""

    status_code = 422
    title = "Validation failed"
    type_slug = "validation-failed"

    def __init__(self, detail: str | None = None, *, pointer: str | None = None, **kw: Any) -> None:
        if pointer is not None and "errors" not in kw:
            kw["errors"] = [{"pointer": pointer, "detail": detail or self.title}]
        super().__init__(detail, **kw)


class Unauthenticated(AppError):
    status_code = 401
    title = "Unauthenticated"
    type_slug = "unauthenticated"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(AppError):
    status_code = 403
    title = "Forbidden"
    type_slug = "forbidden"


class NotFound(AppError):
    """Not there, or not yours: the two are deliberately indistinguishable."""

    status_code = 404
    title = "Not found"
    type_slug = "not-found"


class Conflict(AppError):
    status_code = 409
    title = "Conflict"
    type_slug = "conflict"


class RateLimited(AppError):
    status_code = 429
    title = "Too many requests"
    type_slug = "rate-limited"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class DependencyUnavailable(AppError):
    """A service we depend on (database, provider) did not answer; safe to retry."""

    status_code = 503
    title = "Service unavailable"
    type_slug = "unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(retry_after)})
        super().__init__(detail, **kw)
