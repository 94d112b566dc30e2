"""Console: the operator view at /console/operator. The platform's staff sign in with the operator
token (app/console/operator_session.py) and see the tenants with their status, suspend or reactivate
one, and watch the outbox: pending work, its oldest age, and the dead letters by kind, with a retry.

Every action goes through the functions the /operator/v1 API calls (tenants/accounts/service.py:
`list_tenants`, `get_tenant`, `update_tenant`, audited as the operator; app/outbox/service.py:
`pending_stats`, `dead_stats`, `list_dead`, `retry_dead`), so the console and the API cannot drift.
An operator session opens only these pages, and a tenant admin's session none of them.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect
from litestar.types import ExceptionHandlersMap
from sqlalchemy import select

from app.console import operator_session as sessions
from app.console.common import CsrfRefused, form_of, uuid_or_404
from app.console.session import csrf_ok, secure_cookies
from app.console.views import page
from app.core.deps import DbSession
from app.core.errors import AppError, ValidationFailed
from app.outbox import service as outbox
from app.outbox.schemas import render as render_dead
from tenants.accounts import service as accounts
from tenants.accounts.models import Tenant
from tenants.audit.models import AuditEntry
from tenants.audit.repository import AuditRepository
from tenants.auth import OPERATOR

PAGE = 50
STATUSES = ("active", "suspended")
HOME = "/console/operator/tenants"


class OperatorSignInRequired(Exception):
    """No live operator session: the page answers with a redirect to the operator's sign-in form."""


def _to_sign_in(_request: Request[Any, Any, Any], _exc: Exception) -> Response[Any]:
    return Redirect("/console/operator/sign-in", status_code=303)


def _csrf_refused(_request: Request[Any, Any, Any], _exc: Exception) -> Response[Any]:
    return page(
        "error.html", status_code=403, title="Refused", message="This form has expired. Reload the page.", back=HOME
    )


def _app_error(_request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    status = getattr(exc, "status_code", 400)
    title = "Not found" if status == 404 else getattr(exc, "title", "Error")
    return page("error.html", status_code=status, title=title, message=getattr(exc, "detail", title), back=HOME)


HANDLERS: ExceptionHandlersMap = {
    OperatorSignInRequired: _to_sign_in,
    CsrfRefused: _csrf_refused,
    AppError: _app_error,
}


class OperatorCtx:
    """The signed-in operator of one request, and the CSRF token their forms carry."""

    def __init__(self, session: sessions.OperatorSession) -> None:
        self.session, self.csrf = session, session.csrf
        self.principal = OPERATOR  # what the audit log records, as for the /operator/v1 API

    def view(self, name: str, *, status_code: int = 200, **context: Any) -> Response[str]:
        return page(name, status_code=status_code, csrf=self.csrf, operator=True, **context)


async def signed_in(request: Request[Any, Any, Any]) -> OperatorCtx:
    found = await sessions.resume(request.cookies.get(sessions.COOKIE))
    if found is None:
        raise OperatorSignInRequired
    return OperatorCtx(found)


async def changing(request: Request[Any, Any, Any]) -> tuple[OperatorCtx, dict[str, str]]:
    """A changing request: an operator session, and that session's CSRF token in the form."""
    ctx = await signed_in(request)
    form = await form_of(request)
    if not csrf_ok(ctx.csrf, form.get("csrf")):
        raise CsrfRefused
    return ctx, form


def _cookie(name: str, value: str, max_age: int) -> dict[str, Any]:
    return {
        "key": name,
        "value": value,
        "path": sessions.PATH,
        "max_age": max_age,
        "httponly": True,
        "samesite": "strict",
        "secure": secure_cookies(),
    }


def age(seconds: float) -> str:
    """A queue age for people: 42 s, 7 min, 3.5 h, 2.0 d."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


async def _names(db: DbSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Tenant names for a page of dead letters (the operator sees every tenant)."""
    if not ids:
        return {}
    rows = (await db.execute(select(Tenant.id, Tenant.name).where(Tenant.id.in_(ids)))).all()
    return {tid: name for tid, name in rows}


def _status_or_none(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if value not in STATUSES:
        raise ValidationFailed(f"status must be one of {', '.join(STATUSES)}", pointer="/status")
    return value


class OperatorPages(Controller):
    path = "/console/operator"
    include_in_schema = False
    exception_handlers = HANDLERS

    # --- signing in and out ---------------------------------------------------------------------

    @get("/")
    async def home(self) -> Redirect:
        return Redirect(HOME, status_code=303)

    @get("/sign-in")
    async def sign_in_form(self, request: Request[Any, Any, Any]) -> Response[str]:
        token = request.cookies.get(sessions.PRE_COOKIE) or secrets.token_urlsafe(24)
        response = page("operator/sign_in.html", csrf=token, error=None)
        response.set_cookie(**_cookie(sessions.PRE_COOKIE, token, 600))
        return response

    @post("/sign-in", status_code=303)
    async def sign_in(self, request: Request[Any, Any, Any]) -> Response[Any]:
        form = await form_of(request)
        pre = request.cookies.get(sessions.PRE_COOKIE)
        if not pre or not csrf_ok(pre, form.get("csrf")):
            raise CsrfRefused
        try:
            sid, _ = await sessions.sign_in(form.get("token", ""))
        except sessions.SignInRefused:
            return page("operator/sign_in.html", status_code=401, csrf=pre, error="That is not the operator token.")
        response: Response[Any] = Redirect(HOME, status_code=303)
        response.set_cookie(**_cookie(sessions.COOKIE, sid, sessions.IDLE_SECONDS))
        response.delete_cookie(sessions.PRE_COOKIE, path=sessions.PATH)
        return response

    @post("/sign-out", status_code=303)
    async def sign_out(self, request: Request[Any, Any, Any]) -> Response[Any]:
        await changing(request)
        await sessions.sign_out(request.cookies.get(sessions.COOKIE))
        response: Response[Any] = Redirect("/console/operator/sign-in", status_code=303)
        response.delete_cookie(sessions.COOKIE, path=sessions.PATH)
        return response

    # --- tenants --------------------------------------------------------------------------------

    @get("/tenants")
    async def tenants(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request)
        status = _status_or_none(request.query_params.get("status"))
        found = await accounts.list_tenants(
            db_session, cursor=request.query_params.get("cursor") or None, limit=PAGE, status=status
        )
        return ctx.view(
            "operator/tenants.html",
            rows=found["items"],
            next_cursor=found["next_cursor"],
            status=status or "",
            statuses=STATUSES,
        )

    @get("/tenants/{tenant_id:str}")
    async def tenant(self, tenant_id: str, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request)
        tenant = await accounts.get_tenant(db_session, uuid_or_404(tenant_id))
        repo = AuditRepository(db_session, tenant.id)
        history = await repo.all(
            repo.statement()
            .where(AuditEntry.target_type == "tenant")
            .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
            .limit(20)
        )
        dead = await outbox.list_dead(
            db_session, kind=None, tenant_id=tenant.id, cursor=None, limit=PAGE, render=render_dead
        )
        return ctx.view(
            "operator/tenant.html",
            t=accounts.render(tenant),
            history=history,
            dead=dead["items"],
            more_dead=dead["next_cursor"] is not None,
            changed=request.query_params.get("changed"),
        )

    @post("/tenants/{tenant_id:str}/status", status_code=303)
    async def set_status(self, tenant_id: str, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        """Suspend or reactivate, as PATCH /operator/v1/tenants/{id} with {"status": ...}."""
        ctx, form = await changing(request)
        status = _status_or_none(form.get("status"))
        tenant = await accounts.get_tenant(db_session, uuid_or_404(tenant_id))
        if status is None:
            raise ValidationFailed("choose a status", pointer="/status")
        await accounts.update_tenant(db_session, tenant, {"status": status}, actor=ctx.principal)
        return Redirect(f"/console/operator/tenants/{tenant.id}?changed={status}", status_code=303)

    # --- queue and dead-letter health -----------------------------------------------------------

    @get("/queues")
    async def queues(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request)
        kind = (request.query_params.get("kind") or "").strip()[:32] or None
        tenant_ref = (request.query_params.get("tenant_id") or "").strip()
        tenant_id = uuid_or_404(tenant_ref) if tenant_ref else None
        pending, oldest = await outbox.pending_stats(db_session)
        by_kind = await outbox.dead_stats(db_session)
        dead = await outbox.list_dead(
            db_session,
            kind=kind,
            tenant_id=tenant_id,
            cursor=request.query_params.get("cursor") or None,
            limit=PAGE,
            render=render_dead,
        )
        return ctx.view(
            "operator/queues.html",
            pending=pending,
            oldest=age(oldest) if pending else "—",
            by_kind=sorted(by_kind.items()),
            dead=dead["items"],
            next_cursor=dead["next_cursor"],
            names=await _names(db_session, {d.tenant_id for d in dead["items"]}),
            kind=kind or "",
            tenant_id=tenant_ref,
            retried=request.query_params.get("retried"),
        )

    @post("/dead-letters/{item_id:str}/retry", status_code=303)
    async def retry(self, item_id: str, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        """Run a dead letter again with a fresh count of tries, as POST /operator/v1/dead-letters/{id}/retry."""
        await changing(request)
        item = await outbox.retry_dead(db_session, uuid_or_404(item_id))
        return Redirect(f"/console/operator/queues?retried={item.id}", status_code=303)


ROUTES = [OperatorPages]
