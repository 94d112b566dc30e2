"""Tenant admins manage the endpoints their app receives webhooks at, and look into deliveries."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.datastructures import CacheControlHeader
from litestar.params import Parameter

from app.core.deps import DbSession
from app.core.pagination import page_of, paginate
from app.endpoints import service
from app.endpoints.repository import EndpointRepository
from app.endpoints.schemas import (
    DeliveryOut,
    DeliveryPage,
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    EndpointPage,
    EndpointUpdate,
)
from app.webhooks.models import WebhookEndpoint
from tenants.auth import Caller, require_scope

Limit = Annotated[int, Parameter(ge=1, le=200)]
# A response that carries a new signing secret must never be stored by a cache or proxy on the way.
NO_STORE = CacheControlHeader(no_store=True)


# Test keys may read configuration, never change it (README, API keys).
READ_CONFIG = require_scope("admin", test_keys=True)


class WebhookEndpointsController(Controller):
    path = "/v1/webhook-endpoints"
    tags = ["webhook endpoints"]
    security = [{"ApiKey": []}]
    dependencies = {"principal": require_scope("admin")}

    @get("/", dependencies={"principal": READ_CONFIG}, summary="List this tenant's webhook endpoints (secrets masked)")
    async def list(
        self, principal: Caller, db_session: DbSession, cursor: str | None = None, limit: Limit = 50
    ) -> EndpointPage:
        repo = EndpointRepository(db_session, principal.tenant)
        rows = await repo.all(paginate(repo.statement(), WebhookEndpoint, cursor, limit))
        return EndpointPage(**page_of(rows, limit, service.render))

    @post(
        "/",
        cache_control=NO_STORE,
        summary="Add a webhook endpoint (its signing secret is shown this once)",
        description="The URL must be https and pass the SSRF guard (no private, loopback or metadata "
        "addresses); a refused URL is 422 with pointer /url.",
    )
    async def create(self, data: EndpointCreate, principal: Caller, db_session: DbSession) -> EndpointCreated:
        return await service.create(db_session, principal.tenant, url=data.url, events=data.events, actor=principal)

    @get(
        "/{endpoint_id:uuid}",
        dependencies={"principal": READ_CONFIG},
        summary="Read a webhook endpoint (secret masked)",
    )
    async def read(self, endpoint_id: uuid.UUID, principal: Caller, db_session: DbSession) -> EndpointOut:
        return service.render(await service.get(db_session, principal.tenant, endpoint_id))

    @patch(
        "/{endpoint_id:uuid}", summary="Change the URL or events; disable, or re-enable (which clears failing_since)"
    )
    async def update(
        self, endpoint_id: uuid.UUID, data: EndpointUpdate, principal: Caller, db_session: DbSession
    ) -> EndpointOut:
        row = await service.update(
            db_session,
            principal.tenant,
            endpoint_id,
            url=data.url,
            events=data.events,
            status=data.status,
            actor=principal,
        )
        return service.render(row)

    @delete("/{endpoint_id:uuid}", summary="Remove a webhook endpoint and its delivery history")
    async def remove(self, endpoint_id: uuid.UUID, principal: Caller, db_session: DbSession) -> None:
        await service.delete(db_session, principal.tenant, endpoint_id, actor=principal)

    @post(
        "/{endpoint_id:uuid}/rotate-secret",
        status_code=200,
        cache_control=NO_STORE,
        summary="Replace the signing secret (the new one is shown this once; the old one stops at once)",
    )
    async def rotate_secret(self, endpoint_id: uuid.UUID, principal: Caller, db_session: DbSession) -> EndpointCreated:
        return await service.rotate_secret(db_session, principal.tenant, endpoint_id, actor=principal)

    @get("/{endpoint_id:uuid}/deliveries", summary="An endpoint's deliveries, newest first, each with its attempts")
    async def deliveries(
        self,
        endpoint_id: uuid.UUID,
        principal: Caller,
        db_session: DbSession,
        cursor: str | None = None,
        limit: Limit = 50,
    ) -> DeliveryPage:
        return DeliveryPage(
            **await service.list_deliveries(db_session, principal.tenant, endpoint_id, cursor=cursor, limit=limit)
        )

    @post(
        "/{endpoint_id:uuid}/deliveries/{delivery_id:uuid}/resend",
        status_code=202,
        summary="Attempt a delivery again now (202: queued)",
    )
    async def resend(
        self, endpoint_id: uuid.UUID, delivery_id: uuid.UUID, principal: Caller, db_session: DbSession
    ) -> DeliveryOut:
        row = await service.resend(db_session, principal.tenant, endpoint_id, delivery_id, actor=principal)
        (out,) = await service.render_deliveries(db_session, principal.tenant, [row])
        return out


ROUTES = [WebhookEndpointsController]
