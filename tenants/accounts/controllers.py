"""Operator API: the platform's own staff create and manage tenants."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, patch, post
from litestar.params import Parameter
from app.core.deps import DbSession

from tenants.accounts import service
from tenants.accounts.schemas import TenantCreate, TenantOut, TenantPage, TenantUpdate
from tenants.api_keys import service as keys
from tenants.api_keys.schemas import ApiKeyCreate, ApiKeyCreated
from tenants.auth import Caller, require_operator

Limit = Annotated[int, Parameter(ge=1, le=200)]


class OperatorTenantsController(Controller):
    path = "/operator/v1/tenants"
    tags = ["operator"]
    security = [{"OperatorToken": []}]
    dependencies = {"principal": require_operator()}

    @post("/", summary="Create a tenant")
    async def create(self, data: TenantCreate, principal: Caller, db_session: DbSession) -> TenantOut:
        return service.render(await service.create_tenant(db_session, name=data.name, slug=data.slug, actor=principal))

    @get("/", summary="List tenants (cursor pagination)")
    async def list(self, principal: Caller, db_session: DbSession, cursor: str | None = None,
                   limit: Limit = 50) -> TenantPage:
        return TenantPage(**await service.list_tenants(db_session, cursor=cursor, limit=limit))

    @get("/{tenant_id:uuid}", summary="Read a tenant")
    async def read(self, tenant_id: uuid.UUID, principal: Caller, db_session: DbSession) -> TenantOut:
        return service.render(await service.get_tenant(db_session, tenant_id))

    @patch("/{tenant_id:uuid}", summary="Suspend or reactivate a tenant; set its API rate limit")
    async def update(self, tenant_id: uuid.UUID, data: TenantUpdate, principal: Caller,
                     db_session: DbSession) -> TenantOut:
        tenant = await service.get_tenant(db_session, tenant_id)
        return service.render(await service.update_tenant(db_session, tenant, status=data.status,
                                                          api_rate_per_second=data.api_rate_per_second, actor=principal))

    @post("/{tenant_id:uuid}/api-keys", summary="Create an API key for a tenant (the key is shown once)")
    async def create_key(self, tenant_id: uuid.UUID, data: ApiKeyCreate, principal: Caller,
                         db_session: DbSession) -> ApiKeyCreated:
        tenant = await service.get_tenant(db_session, tenant_id)
        return await keys.create_key(db_session, tenant.id, name=data.name, scopes=list(data.scopes),
                                     environment=data.environment, actor=principal)


ROUTES = [OperatorTenantsController]
