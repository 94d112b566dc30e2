"""Tenant admins manage their own API keys."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.datastructures import CacheControlHeader
from litestar.params import Parameter

from app.core.deps import DbSession
from app.core.pagination import page_of, paginate
from tenants.api_keys import service
from tenants.api_keys.models import ApiKey
from tenants.api_keys.repository import ApiKeyRepository
from tenants.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, ApiKeyPage
from tenants.auth import Caller, require_scope

Limit = Annotated[int, Parameter(ge=1, le=200)]
# A response that carries a new key must never be stored by a cache or proxy on the way.
NO_STORE = CacheControlHeader(no_store=True)


class ApiKeysController(Controller):
    path = "/v1/api-keys"
    tags = ["api keys"]
    security = [{"ApiKey": []}]
    # Test admin keys too: they list keys, and create and revoke test keys (the service refuses live ones).
    dependencies = {"principal": require_scope("admin", test_keys=True)}

    @get("/", summary="List this tenant's API keys")
    async def list(
        self, principal: Caller, db_session: DbSession, cursor: str | None = None, limit: Limit = 50
    ) -> ApiKeyPage:
        repo = ApiKeyRepository(db_session, principal.tenant)
        rows = await repo.all(paginate(repo.statement(), ApiKey, cursor, limit))
        return ApiKeyPage(**page_of(rows, limit, service.render))

    @get("/{key_id:uuid}", summary="Read one API key (never its secret)")
    async def read(self, key_id: uuid.UUID, principal: Caller, db_session: DbSession) -> ApiKeyOut:
        return service.render(await ApiKeyRepository(db_session, principal.tenant).get(key_id, what="API key"))

    @post("/", cache_control=NO_STORE, summary="Create an API key (the full key is shown this once)")
    async def create(self, data: ApiKeyCreate, principal: Caller, db_session: DbSession) -> ApiKeyCreated:
        return await service.create_key(
            db_session,
            principal.tenant,
            name=data.name,
            scopes=list(data.scopes),
            environment=data.environment,
            actor=principal,
        )

    @delete("/{key_id:uuid}", summary="Revoke an API key (immediate on this process, within 5 s everywhere)")
    async def revoke(self, key_id: uuid.UUID, principal: Caller, db_session: DbSession) -> None:
        await service.revoke_key(db_session, principal.tenant, key_id, actor=principal)


ROUTES = [ApiKeysController]
