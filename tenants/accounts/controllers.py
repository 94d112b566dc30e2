"""Operator API: the platform's own staff create and manage tenants."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, patch, post, put
from litestar.datastructures import CacheControlHeader
from litestar.params import Parameter

from app.core.deps import DbSession
from tenants.accounts import retention, service
from tenants.accounts.schemas import RetentionSettings, TenantCreate, TenantOut, TenantPage, TenantUpdate
from tenants.api_keys import service as keys
from tenants.api_keys.schemas import ApiKeyCreate, ApiKeyCreated
from tenants.auth import Caller, require_operator, require_scope

Limit = Annotated[int, Parameter(ge=1, le=200)]


class OperatorTenantsController(Controller):
    path = "/operator/v1/tenants"
    tags = ["operator"]
    security = [{"OperatorToken": []}]
    dependencies = {"principal": require_operator()}
    # Staff-only answers, one of which carries a new API key: none may be kept by a cache on the way.
    cache_control = CacheControlHeader(no_store=True)

    @post("/", summary="Create a tenant")
    async def create(self, data: TenantCreate, principal: Caller, db_session: DbSession) -> TenantOut:
        return service.render(await service.create_tenant(db_session, name=data.name, slug=data.slug, actor=principal))

    @get("/", summary="List tenants (cursor pagination)")
    async def list(
        self, principal: Caller, db_session: DbSession, cursor: str | None = None, limit: Limit = 50
    ) -> TenantPage:
        return TenantPage(**await service.list_tenants(db_session, cursor=cursor, limit=limit))

    @get("/{tenant_id:uuid}", summary="Read a tenant")
    async def read(self, tenant_id: uuid.UUID, principal: Caller, db_session: DbSession) -> TenantOut:
        return service.render(await service.get_tenant(db_session, tenant_id))

    @patch(
        "/{tenant_id:uuid}",
        summary="Suspend or reactivate a tenant; set its API rate limit and quotas",
        description="Fields left out are unchanged. `null` on `api_rate_per_second` or a `max_*` quota brings back "
        "the platform default (200 requests/s; 10 webhook endpoints, 500 templates, 1,000,000 contacts). "
        "Lowering a quota below what the tenant holds removes nothing; it only refuses new ones.",
    )
    async def update(
        self, tenant_id: uuid.UUID, data: TenantUpdate, principal: Caller, db_session: DbSession
    ) -> TenantOut:
        tenant = await service.get_tenant(db_session, tenant_id)
        return service.render(await service.update_tenant(db_session, tenant, data.changes(), actor=principal))

    @post("/{tenant_id:uuid}/api-keys", summary="Create an API key for a tenant (the key is shown once)")
    async def create_key(
        self, tenant_id: uuid.UUID, data: ApiKeyCreate, principal: Caller, db_session: DbSession
    ) -> ApiKeyCreated:
        tenant = await service.get_tenant(db_session, tenant_id)
        return await keys.create_key(
            db_session,
            tenant.id,
            name=data.name,
            scopes=list(data.scopes),
            environment=data.environment,
            actor=principal,
        )


class RetentionController(Controller):
    """The tenant admin's retention settings (tenants/accounts/retention.py, docs/data.md)."""

    path = "/v1/settings/retention"
    tags = ["settings"]
    security = [{"ApiKey": []}]
    dependencies = {"principal": require_scope("admin")}

    # Test keys may read configuration, never change it (README, API keys).
    @get(
        "/",
        dependencies={"principal": require_scope("admin", test_keys=True)},
        summary="Read the retention settings (the defaults if never set)",
    )
    async def read(self, principal: Caller, db_session: DbSession) -> RetentionSettings:
        return await retention.get_settings(db_session, principal.tenant)

    @put(
        "/",
        summary="Replace the retention settings",
        description="`body_days` (1-90, default 30): after it, message bodies, inbound texts, raw provider "
        "callbacks and webhook delivery payloads are redacted in place. `metadata_days` (30-3650, default 400): "
        "after it, notifications with their attempts, events and decisions, inbound messages, raw callbacks and "
        "webhook deliveries are deleted. A field left out is the default. Suppressions, consent evidence and the "
        "audit log are never removed by retention. Shortening applies at the next pass (at most 5 minutes); "
        "lengthening does not bring back what was already redacted or deleted.",
    )
    async def replace(self, data: RetentionSettings, principal: Caller, db_session: DbSession) -> RetentionSettings:
        return await retention.put_settings(db_session, principal.tenant, data, actor=principal)


ROUTES = [OperatorTenantsController, RetentionController]
