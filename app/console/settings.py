"""Console: the Twilio depth settings with their current state. Retention (as /v1/settings/retention,
errors beside each field) and the Content template sync (its state, the synced templates with their
approval and category, and "sync now", as POST /v1/templates/sync).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from app.console.common import HANDLERS, Ctx, changing, field_errors, signed_in
from app.core.deps import DbSession
from app.core.errors import Conflict, DependencyUnavailable, ValidationFailed
from tenants.accounts import retention
from tenants.accounts.schemas import RetentionSettings
from tenants.templates import service as templates
from tenants.templates import sync

FIELDS = ("body_days", "metadata_days")


async def _page(
    ctx: Ctx,
    db: DbSession,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    synced: Any = None,
) -> Response[str]:
    current = await retention.get_settings(db, ctx.tenant)
    state = await sync.state_of(db, ctx.tenant)
    contents = await sync.listed(db, ctx.tenant, state.account_sid) if state and state.account_sid else {}
    return ctx.view(
        "settings.html",
        status_code=status_code,
        f=form or msgspec.to_builtins(current),
        errors=errors or {},
        state=state,
        contents=sorted(contents.values(), key=lambda c: c.friendly_name or c.content_sid),
        synced=synced,
    )


class SettingsPages(Controller):
    path = "/console"
    include_in_schema = False
    exception_handlers = HANDLERS

    @get("/settings")
    async def settings(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request, db_session)
        return await _page(ctx, db_session)

    @post("/settings/retention", status_code=303)
    async def save_retention(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        ctx, form = await changing(request, db_session, live=True)
        typed = {k: form.get(k, "").strip() for k in FIELDS}
        errors: dict[str, str] = {}
        body: dict[str, Any] = {}
        for k, v in typed.items():
            if v and not v.isdigit():
                errors[k] = "a whole number of days"
            elif v:
                body[k] = int(v)
        if not errors:
            try:
                doc = msgspec.convert(body, RetentionSettings)
                await retention.put_settings(db_session, ctx.tenant, doc, actor=ctx.principal)
            except (msgspec.ValidationError, ValidationFailed) as exc:
                await db_session.rollback()
                errors = {p.strip("/").split("/")[0] or "form": m for p, m in field_errors(exc).items()}
            else:
                return Redirect("/console/settings", status_code=303)
        return await _page(ctx, db_session, status_code=422, errors=errors, form=typed)

    @post("/settings/sync", status_code=200)
    async def sync_now(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx, _ = await changing(request, db_session, live=True)
        try:
            result = await templates.sync_now(db_session, ctx.tenant, actor=ctx.principal)
        except (Conflict, DependencyUnavailable) as exc:
            await db_session.rollback()
            return await _page(ctx, db_session, status_code=exc.status_code, errors={"sync": exc.detail or exc.title})
        return await _page(ctx, db_session, synced=result)


ROUTES = [SettingsPages]
