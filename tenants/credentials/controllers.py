"""Tenant admins store their own Twilio and SendGrid credentials; reads are masked.

The same three routes per provider (PUT, GET, DELETE /v1/providers/<name>), built once from its
spec (tenants/credentials/specs.py). Each handler gets its provider's own name and types, so the
OpenAPI document names them as before (putTwilio, getSendgrid, ...).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from litestar import Controller, delete, get, put
from litestar.handlers import HTTPRouteHandler
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.deps import DbSession
from tenants.auth import Caller, require_scope
from tenants.credentials import service
from tenants.credentials.specs import SENDGRID, TWILIO, ProviderSpec
from tenants.templates import service as templates


@dataclass(frozen=True)
class AlongWith:
    """What a provider's PUT also does: `fetch` with the new credentials before anything is stored (no row is
    locked across the provider call), then `apply` what it got in the same transaction, after the store."""

    fetch: Callable[[Any], Awaitable[Any]]
    apply: Callable[[AsyncSession, uuid.UUID, str, Any], Awaitable[None]]


# Twilio's Content templates are synced with its credentials (tenants/templates/sync.py): a failure there is
# recorded and retried by the periodic pass; the PUT still succeeds.
ALONG_WITH: dict[str, AlongWith] = {
    TWILIO.name: AlongWith(templates.prefetch_contents, templates.sync_after_store),
}

# Test keys may read configuration, never change it (README, API keys).
READ_CONFIG = require_scope("admin", test_keys=True)


async def put_provider(
    db_session: AsyncSession, spec: ProviderSpec[Any, Any, Any], tenant_id: uuid.UUID, data: Any, *, actor: Any
) -> Any:
    """PUT /v1/providers/<name> (and the console's form): verify and store, with what the provider's PUT also does."""
    along = ALONG_WITH.get(spec.name)
    fetched = await along.fetch(spec.creds_of(data)) if along is not None else None
    row = await service.put(db_session, spec, tenant_id, data, actor=actor)
    if along is not None:
        await along.apply(db_session, tenant_id, spec.target_id(row), fetched)
    return row


def _named(fn: Any, name: str, annotations: dict[str, Any]) -> Any:
    fn.__name__ = fn.__qualname__ = name
    fn.__annotations__ = annotations  # concrete types: Litestar reads the body and response schemas from them
    return fn


def provider_routes(spec: ProviderSpec[Any, Any, Any]) -> tuple[HTTPRouteHandler, HTTPRouteHandler, HTTPRouteHandler]:
    async def store(self: Controller, data: Any, principal: Caller, db_session: DbSession) -> Any:
        return service.render(spec, await put_provider(db_session, spec, principal.tenant, data, actor=principal))

    async def read(self: Controller, principal: Caller, db_session: DbSession) -> Any:
        return service.render(spec, await service.get(db_session, spec, principal.tenant))

    async def remove(self: Controller, principal: Caller, db_session: DbSession) -> None:
        await service.delete(db_session, spec, principal.tenant, actor=principal)

    common = {"principal": Caller, "db_session": DbSession}
    path, title = f"/{spec.name}", spec.title
    return (
        put(path, summary=f"Store {title} credentials (verified with {title} first; encrypted at rest)")(
            _named(store, f"put_{spec.name}", {"data": spec.data_in, **common, "return": spec.data_out})
        ),
        get(path, dependencies={"principal": READ_CONFIG}, summary=f"Read {title} credentials, masked")(
            _named(read, f"get_{spec.name}", {**common, "return": spec.data_out})
        ),
        delete(path, summary=f"Remove {title} credentials")(
            _named(remove, f"delete_{spec.name}", {**common, "return": None})
        ),
    )


class ProvidersController(Controller):
    path = "/v1/providers"
    tags = ["providers"]
    security = [{"ApiKey": []}]
    dependencies = {"principal": require_scope("admin")}

    put_twilio, get_twilio, delete_twilio = provider_routes(TWILIO)
    put_sendgrid, get_sendgrid, delete_sendgrid = provider_routes(SENDGRID)


ROUTES = [ProvidersController]
