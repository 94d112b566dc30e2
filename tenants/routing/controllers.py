from __future__ import annotations

from litestar import Controller, get, put

from app.core.deps import DbSession
from tenants.auth import Caller, require_scope
from tenants.routing import service
from tenants.routing.schemas import RoutingPolicyDoc

# Test keys may read configuration, never change it (README, API keys).
READ_CONFIG = require_scope("admin", test_keys=True)


class RoutingController(Controller):
    path = "/v1/routing"
    tags = ["routing"]
    security = [{"ApiKey": []}]
    dependencies = {"principal": require_scope("admin")}

    @get("/", dependencies={"principal": READ_CONFIG}, summary="Read the routing policy (defaults if never set)")
    async def read(self, principal: Caller, db_session: DbSession) -> RoutingPolicyDoc:
        return await service.get_policy(db_session, principal.tenant)

    @put("/", summary="Replace the routing policy")
    async def replace(self, data: RoutingPolicyDoc, principal: Caller, db_session: DbSession) -> RoutingPolicyDoc:
        return await service.put_policy(db_session, principal.tenant, data, actor=principal)


ROUTES = [RoutingController]
