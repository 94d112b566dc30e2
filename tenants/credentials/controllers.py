"""Tenant admins store their own Twilio and SendGrid credentials; reads are masked."""

from __future__ import annotations

from litestar import Controller, delete, get, put
from app.core.deps import DbSession

from tenants.auth import Caller, require_scope
from tenants.credentials import service
from tenants.credentials.schemas import (
    SendgridCredentialsIn,
    SendgridCredentialsOut,
    TwilioCredentialsIn,
    TwilioCredentialsOut,
)


class ProvidersController(Controller):
    path = "/v1/providers"
    tags = ["providers"]
    security = [{"ApiKey": []}]
    dependencies = {"principal": require_scope("admin")}

    @put("/twilio", summary="Store Twilio credentials (verified with Twilio first; encrypted at rest)")
    async def put_twilio(self, data: TwilioCredentialsIn, principal: Caller, db_session: DbSession) -> TwilioCredentialsOut:
        return service.render_twilio(await service.put_twilio(db_session, principal.tenant, data, actor=principal))

    @get("/twilio", summary="Read Twilio credentials, masked")
    async def get_twilio(self, principal: Caller, db_session: DbSession) -> TwilioCredentialsOut:
        return service.render_twilio(await service.get_twilio(db_session, principal.tenant))

    @delete("/twilio", summary="Remove Twilio credentials")
    async def delete_twilio(self, principal: Caller, db_session: DbSession) -> None:
        await service.delete_twilio(db_session, principal.tenant, actor=principal)

    @put("/sendgrid", summary="Store SendGrid credentials (verified with SendGrid first; encrypted at rest)")
    async def put_sendgrid(self, data: SendgridCredentialsIn, principal: Caller, db_session: DbSession) -> SendgridCredentialsOut:
        return service.render_sendgrid(await service.put_sendgrid(db_session, principal.tenant, data, actor=principal))

    @get("/sendgrid", summary="Read SendGrid credentials, masked")
    async def get_sendgrid(self, principal: Caller, db_session: DbSession) -> SendgridCredentialsOut:
        return service.render_sendgrid(await service.get_sendgrid(db_session, principal.tenant))

    @delete("/sendgrid", summary="Remove SendGrid credentials")
    async def delete_sendgrid(self, principal: Caller, db_session: DbSession) -> None:
        await service.delete_sendgrid(db_session, principal.tenant, actor=principal)


ROUTES = [ProvidersController]
