"""Console: the tenant's Twilio and SendGrid credentials, masked as GET /v1/providers/<name> masks them,
with their state; replace them (verified with the provider first, by the same put_provider as PUT
/v1/providers/<name>) or remove them. A secret is never sent back to the browser: a replacement
needs its secrets typed again.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from app.console.common import HANDLERS, Ctx, changing, field_errors, signed_in
from app.core.deps import DbSession
from app.core.errors import DependencyUnavailable, NotFound, ValidationFailed
from tenants.credentials import controllers as providers_api
from tenants.credentials import service
from tenants.credentials.specs import SENDGRID, TWILIO, ProviderSpec

SPECS: dict[str, ProviderSpec[Any, Any, Any]] = {TWILIO.name: TWILIO, SENDGRID.name: SENDGRID}
# the form's fields, in order, and which of them are secrets (typed, never prefilled)
FIELDS = {
    TWILIO.name: (
        "account_sid",
        "auth_token",
        "api_key_sid",
        "api_key_secret",
        "whatsapp_from",
        "messaging_service_sid",
    ),
    SENDGRID.name: ("api_key", "from_email", "from_name", "event_webhook_public_key"),
}
SECRETS = {"auth_token", "api_key_secret", "api_key"}


async def _page(
    ctx: Ctx,
    db: DbSession,
    *,
    status_code: int = 200,
    errors: dict[str, dict[str, str]] | None = None,
    form: Any = None,
) -> Response[str]:
    shown: dict[str, Any] = {}
    for name, spec in SPECS.items():
        row = await service.find(db, spec, ctx.tenant)
        shown[name] = msgspec.to_builtins(service.render(spec, row)) if row is not None else None
    return ctx.view(
        "providers.html",
        status_code=status_code,
        shown=shown,
        fields=FIELDS,
        secrets=SECRETS,
        errors=errors or {},
        form=form or {},
    )


class ProviderPages(Controller):
    path = "/console"
    include_in_schema = False
    exception_handlers = HANDLERS

    @get("/providers")
    async def providers(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request, db_session)
        return await _page(ctx, db_session)

    @post("/providers/{name:str}", status_code=303)
    async def replace(self, name: str, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        ctx, form = await changing(request, db_session, live=True)
        spec = SPECS.get(name)
        if spec is None:
            raise NotFound("no such provider")
        body = {k: form[k].strip() for k in FIELDS[name] if form.get(k, "").strip()}
        try:
            data = msgspec.convert(body, spec.data_in)
            await providers_api.put_provider(db_session, spec, ctx.tenant, data, actor=ctx.principal)
        except (msgspec.ValidationError, ValidationFailed, DependencyUnavailable) as exc:
            await db_session.rollback()
            errors = {p.strip("/").split("/")[0] or "form": m for p, m in field_errors(exc).items()}
            kept = {k: v for k, v in form.items() if k not in SECRETS}  # secrets are never echoed
            return await _page(ctx, db_session, status_code=422, errors={name: errors}, form={name: kept})
        return Redirect("/console/providers", status_code=303)

    @post("/providers/{name:str}/remove", status_code=303)
    async def remove(self, name: str, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        ctx, _ = await changing(request, db_session, live=True)
        spec = SPECS.get(name)
        if spec is None:
            raise NotFound("no such provider")
        await service.delete(db_session, spec, ctx.tenant, actor=ctx.principal)
        return Redirect("/console/providers", status_code=303)


ROUTES = [ProviderPages]
