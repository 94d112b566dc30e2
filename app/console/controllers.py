"""The tenant admin console at /console: server-rendered pages over the same services as /v1.

Signed in with an admin API key (app/console/session.py); every page acts as that key, tenant-scoped
through the same repositories and services the API uses, so another tenant's id is 404 here too and
every change lands in the audit log under the key. Every form that changes something carries the
session's CSRF token. Kept out of the OpenAPI document: it is not an API.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import quote

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from app.console import (
    contacts,
    dashboard,
    endpoints,
    inbox,
    operator,
    providers,
    routing,
    rules,
    settings,
    suppressions,
)
from app.console import session as sessions
from app.console.common import (
    HANDLERS,
    CsrfRefused,
    Ctx,
    changing,
    form_lists,
    form_of,
    pairs,
    signed_in,
    uuid_or_404,
    when,
)
from app.console.views import STATIC, page
from app.core.deps import DbSession
from app.core.errors import ValidationFailed
from app.core.pagination import paginate
from app.notify import service as notify
from app.notify.controllers import _contact_for
from app.notify.models import Notification
from app.notify.repository import (
    EnvironmentNotificationRepository,
    story,
)
from app.notify.schemas import NotificationIn
from tenants.api_keys import service as api_keys
from tenants.api_keys.models import ApiKey
from tenants.api_keys.repository import ApiKeyRepository
from tenants.audit.models import AuditEntry
from tenants.audit.repository import AuditRepository
from tenants.auth import SCOPES
from tenants.templates import service as templates
from tenants.templates.models import Template
from tenants.templates.repository import TemplateRepository
from tenants.templates.schemas import TemplateBody

PAGE = 50
STATUSES = ("accepted", "queued", "sending", "sent", "delivered", "read", "failed", "suppressed")
CHANNELS = ("whatsapp", "email")


def _cookie_headers(name: str, value: str, max_age: int) -> dict[str, Any]:
    return {
        "key": name,
        "value": value,
        "path": sessions.PATH,
        "max_age": max_age,
        "httponly": True,
        "samesite": "strict",
        "secure": sessions.secure_cookies(),
    }


class ConsoleController(Controller):
    path = "/console"
    include_in_schema = False
    exception_handlers = HANDLERS

    # --- signing in and out ---------------------------------------------------------------------

    @get("/")
    async def home(self) -> Redirect:
        return Redirect("/console/notifications", status_code=303)

    @get("/sign-in")
    async def sign_in_form(self, request: Request[Any, Any, Any]) -> Response[str]:
        token = request.cookies.get(sessions.PRE_COOKIE) or secrets.token_urlsafe(24)
        response = page("sign_in.html", csrf=token, error=None)
        response.set_cookie(**_cookie_headers(sessions.PRE_COOKIE, token, 600))
        return response

    @post("/sign-in", status_code=303)
    async def sign_in(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        form = await form_of(request)
        pre = request.cookies.get(sessions.PRE_COOKIE)
        if not pre or not sessions.csrf_ok(pre, form.get("csrf")):
            raise CsrfRefused
        try:
            sid, _ = await sessions.sign_in(db_session, form.get("key", ""))
        except sessions.SignInRefused:
            return page(
                "sign_in.html", status_code=401, csrf=pre, error="That is not an active admin API key of a tenant."
            )
        response: Response[Any] = Redirect("/console/notifications", status_code=303)
        response.set_cookie(**_cookie_headers(sessions.COOKIE, sid, sessions.IDLE_SECONDS))
        response.delete_cookie(sessions.PRE_COOKIE, path=sessions.PATH)
        return response

    @post("/sign-out", status_code=303)
    async def sign_out(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        await changing(request, db_session)
        await sessions.sign_out(request.cookies.get(sessions.COOKIE))
        response: Response[Any] = Redirect("/console/sign-in", status_code=303)
        response.delete_cookie(sessions.COOKIE, path=sessions.PATH)
        return response

    # --- notifications --------------------------------------------------------------------------

    @get("/notifications")
    async def notifications(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request, db_session)
        q = {
            k: (request.query_params.get(k) or "").strip()
            for k in ("status", "channel", "to", "template", "after", "before")
        }
        repo = EnvironmentNotificationRepository(db_session, ctx.tenant, ctx.principal.environment)
        stmt = repo.statement()
        if q["status"]:
            stmt = stmt.where(Notification.status == q["status"])
        if q["channel"]:
            stmt = stmt.where(Notification.channel == q["channel"])
        if q["template"]:
            stmt = stmt.where(Notification.template_key == q["template"])
        if after := when(q["after"]):
            stmt = stmt.where(Notification.created_at >= after)
        if before := when(q["before"]):
            stmt = stmt.where(Notification.created_at < before)
        if q["to"]:
            stmt = stmt.where(Notification.contact_id == await _contact_for(db_session, ctx.tenant, q["to"]))
        rows = await repo.all(paginate(stmt, Notification, request.query_params.get("cursor"), PAGE))
        return ctx.view(
            "notifications.html",
            rows=rows[:PAGE],
            q=q,
            statuses=STATUSES,
            channels=CHANNELS,
            sent=request.query_params.get("sent"),
            error=None,
        )

    @post("/notifications", status_code=303)
    async def send_test(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        ctx, form = await changing(request, db_session)
        body: dict[str, Any] = {"to": {k: form[k].strip() for k in ("phone", "email") if form.get(k, "").strip()}}
        if form.get("template", "").strip():
            body["template"] = form["template"].strip()
            body["variables"] = pairs(form.get("variables", ""))
        if form.get("text", "").strip():
            body["text"] = form["text"]
        try:
            data = msgspec.convert(body, NotificationIn)
            notification_id = await notify.accept(db_session, ctx.principal, data)
        except (msgspec.ValidationError, ValidationFailed) as exc:
            await db_session.rollback()
            detail = getattr(exc, "detail", None) or str(exc)
            return ctx.view(
                "notifications.html",
                status_code=422,
                rows=[],
                q={},
                statuses=STATUSES,
                channels=CHANNELS,
                sent=None,
                error=detail,
                form=form,
            )
        return Redirect(f"/console/notifications/{notification_id}", status_code=303)

    @get("/notifications/{notification_id:str}")
    async def notification(
        self, notification_id: str, request: Request[Any, Any, Any], db_session: DbSession
    ) -> Response[str]:
        ctx = await signed_in(request, db_session)
        n, attempts, events, decisions = await story(
            ctx.tenant, ctx.principal.environment, uuid_or_404(notification_id)
        )
        timeline = sorted(
            [("decision", d.created_at, d) for d in decisions]
            + [("attempt", a.created_at, a) for a in attempts]
            + [("event", e.occurred_at, e) for e in events],
            key=lambda item: item[1],
        )
        fallback = [d for d in decisions if d.step == "fallback"]
        return ctx.view(
            "notification.html",
            n=n,
            attempts=attempts,
            events=events,
            decisions=decisions,
            timeline=timeline,
            fallback=fallback,
        )

    # --- API keys -------------------------------------------------------------------------------

    @get("/api-keys")
    async def keys(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request, db_session)
        return await self._keys_page(ctx, db_session, created=None)

    async def _keys_page(self, ctx: Ctx, db: DbSession, *, created: Any, error: str | None = None) -> Response[str]:
        repo = ApiKeyRepository(db, ctx.tenant)
        rows = await repo.all(repo.statement().order_by(ApiKey.created_at.desc()).limit(200))
        return ctx.view(
            "api_keys.html",
            status_code=422 if error else 200,
            rows=rows,
            created=created,
            scopes=SCOPES,
            error=error,
        )

    @post("/api-keys", status_code=200)
    async def create_key(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx, form = await changing(request, db_session)
        scopes = [
            s for s in await form_lists(request, "scopes") if s in SCOPES
        ]  # none ticked: refused below, not a 500
        name = form.get("name", "").strip()
        environment = form.get("environment") or "live"
        if not name or not scopes or environment not in ("live", "test") or len(name) > 100:
            return await self._keys_page(ctx, db_session, created=None, error="A key needs a name and a scope.")
        created = await api_keys.create_key(
            db_session, ctx.tenant, name=name, scopes=scopes, environment=environment, actor=ctx.principal
        )
        # The one time the full key is shown: this response is never stored (Cache-Control: no-store).
        return await self._keys_page(ctx, db_session, created=created)

    @post("/api-keys/{key_id:str}/revoke", status_code=303)
    async def revoke_key(self, key_id: str, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        ctx, _ = await changing(request, db_session)
        await api_keys.revoke_key(db_session, ctx.tenant, uuid_or_404(key_id), actor=ctx.principal)
        return Redirect("/console/api-keys", status_code=303)

    # --- audit log ------------------------------------------------------------------------------

    @get("/audit-log")
    async def audit_log(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request, db_session)
        ctx.live_only(reading=True)  # as GET /v1/audit-log
        q = {k: (request.query_params.get(k) or "").strip()[:128] for k in ("action", "target_type", "target_id")}
        repo = AuditRepository(db_session, ctx.tenant)
        stmt = repo.statement()
        if q["action"]:
            stmt = stmt.where(AuditEntry.action == q["action"])
        if q["target_type"]:
            stmt = stmt.where(AuditEntry.target_type == q["target_type"])
        if q["target_id"]:
            stmt = stmt.where(AuditEntry.target_id == q["target_id"])
        rows = await repo.all(paginate(stmt, AuditEntry, request.query_params.get("cursor"), PAGE))
        return ctx.view("audit_log.html", rows=rows[:PAGE], q=q, json=json)

    # --- templates ------------------------------------------------------------------------------

    @get("/templates")
    async def templates_list(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request, db_session)
        repo = TemplateRepository(db_session, ctx.tenant)
        rows = await repo.all(repo.statement().order_by(Template.key).limit(500))
        approval = {t.key: templates.render(t).approval_status for t in rows}  # what Twilio said (docs/templates.md)
        deleted = (request.query_params.get("deleted") or "")[:100]
        return ctx.view("templates.html", rows=rows, approval=approval, deleted=deleted)

    @get("/templates/new")
    async def template_new(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request, db_session)
        return ctx.view("template_edit.html", key=None, body=json.dumps(_EXAMPLE, indent=2), error=None, preview=None)

    @get("/templates/{template_key:str}")
    async def template_edit(
        self, template_key: str, request: Request[Any, Any, Any], db_session: DbSession
    ) -> Response[str]:
        ctx = await signed_in(request, db_session)
        t = await templates.get(db_session, ctx.tenant, template_key)
        out = msgspec.to_builtins(templates.render(t))
        body = {k: out[k] for k in ("default_locale", "locales", "description") if out.get(k) is not None}
        if out.get("sensitive_variables"):  # else saving from the console would unmark them
            body["sensitive_variables"] = out["sensitive_variables"]
        return ctx.view(
            "template_edit.html", key=t.key, body=json.dumps(body, indent=2), error=None, preview=_preview(body, {})
        )

    @post("/templates", status_code=303)
    async def template_save(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        ctx, form = await changing(request, db_session, live=True)  # as PUT/POST /v1/templates: no test key
        existing = form.get("existing", "").strip()
        key = existing or form.get("key", "").strip()
        try:
            raw = json.loads(form.get("body", ""))
            body = msgspec.convert(raw, TemplateBody)
            if form.get("action") == "preview":
                return ctx.view(
                    "template_edit.html",
                    key=existing or None,
                    new_key=key,
                    body=form.get("body", ""),
                    error=None,
                    preview=_preview(raw, pairs(form.get("sample", ""))),
                    sample=form.get("sample", ""),
                )
            if existing:
                await templates.replace(db_session, ctx.tenant, key, body, actor=ctx.principal)
            else:
                await templates.create(db_session, ctx.tenant, key, body, actor=ctx.principal)
        except (ValueError, msgspec.ValidationError, ValidationFailed) as exc:
            await db_session.rollback()
            return ctx.view(
                "template_edit.html",
                status_code=422,
                key=existing or None,
                new_key=key,
                body=form.get("body", ""),
                error=getattr(exc, "detail", None) or str(exc),
                preview=None,
            )
        return Redirect(f"/console/templates/{key}", status_code=303)

    @post("/templates/{template_key:str}/delete", status_code=303)
    async def template_delete(
        self, template_key: str, request: Request[Any, Any, Any], db_session: DbSession
    ) -> Response[Any]:
        """DELETE /v1/templates/{key}, through the same service function: another tenant's key is 404, the
        deletion is audit-logged as template.deleted. The form asks first, as API-key revoke does."""
        ctx, _ = await changing(request, db_session, live=True)  # as DELETE /v1/templates: no test key
        await templates.delete(db_session, ctx.tenant, template_key, actor=ctx.principal)  # 404: not theirs
        return Redirect("/console/templates?deleted=" + quote(template_key, safe=""), status_code=303)


def _preview(body: dict[str, Any], sample: dict[str, str]) -> list[dict[str, Any]]:
    """Each locale's WhatsApp variables and email text with the sample filled in (plain {{name}} only:
    the sandboxed renderer runs at send time; this is a look, not the send)."""

    def fill(text: str | None) -> str | None:
        if text is None:
            return None
        for name, value in sample.items():
            text = text.replace("{{" + name + "}}", value).replace("{{ " + name + " }}", value)
        return text

    out = []
    for locale, content in (body.get("locales") or {}).items():
        wa, email = content.get("whatsapp") or {}, content.get("email") or {}
        out.append(
            {
                "locale": locale,
                "whatsapp": wa and {"content_sid": wa.get("content_sid"), "variables": wa.get("variables", [])},
                "email": email
                and {
                    "subject": fill(email.get("subject")),
                    "text": fill(email.get("text")),
                    "html": fill(email.get("html")),
                },
            }
        )
    return out


_EXAMPLE = {
    "default_locale": "en",
    "locales": {
        "en": {
            "whatsapp": {"content_sid": "HX" + "0" * 32, "variables": ["name"]},
            "email": {"subject": "Hello {{name}}", "text": "Hi {{name}}"},
        }
    },
}

STATIC_ROUTER = create_static_files_router(
    path="/console/static", directories=[STATIC], include_in_schema=False, name="console-static"
)

# One controller per page group, all under /console.
ROUTES = [
    ConsoleController,
    *routing.ROUTES,
    *rules.ROUTES,
    *contacts.ROUTES,
    *suppressions.ROUTES,
    *providers.ROUTES,
    *endpoints.ROUTES,
    *inbox.ROUTES,
    *dashboard.ROUTES,
    *settings.ROUTES,
    *operator.ROUTES,  # /console/operator: the operator view, its own session
    STATIC_ROUTER,
]
