from __future__ import annotations

import uuid
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ValidationFailed
from app.core.repository import TenantRepository
from app.core.ttlcache import TTLCache
from tenants.audit import service as audit
from tenants.routing import rules
from tenants.routing.models import RoutingPolicy
from tenants.routing.schemas import RoutingPolicyDoc


class RoutingRepository(TenantRepository[RoutingPolicy]):
    model = RoutingPolicy


_policies: TTLCache[RoutingPolicyDoc] = TTLCache()


async def get_policy(session: AsyncSession, tenant_id: uuid.UUID) -> RoutingPolicyDoc:
    """The stored policy, or the defaults for a tenant that never set one (read by accept, route, send, inbound)."""
    doc = _policies.get(tenant_id)
    if doc is None:
        row = await RoutingRepository(session, tenant_id).one_by()
        doc = msgspec.convert(row.policy, RoutingPolicyDoc) if row else RoutingPolicyDoc()
        _policies.put(tenant_id, doc)
    return doc


async def put_policy(
    session: AsyncSession, tenant_id: uuid.UUID, doc: RoutingPolicyDoc, *, actor: Any
) -> RoutingPolicyDoc:
    errors = rules.validate(doc)
    if errors:
        raise ValidationFailed(errors[0]["detail"] if len(errors) == 1 else "Request validation failed", errors=errors)
    repo = RoutingRepository(session, tenant_id)
    row = await repo.one_by()
    before: dict[str, Any] | None = row.policy if row else None
    after = msgspec.to_builtins(doc)
    if row is None:
        repo.add(RoutingPolicy(policy=after))
    else:
        row.policy = after
    await session.flush()
    _policies.invalidate_on_commit(session, tenant_id)
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="routing.updated",
        target_type="routing",
        target_id=None,
        before=before,
        after=after,
    )
    return doc


def messaging_service_for(doc: RoutingPolicyDoc, country: str | None, tenant_default: str | None) -> str | None:
    """Country-specific service, then the routing default, then the one stored with the credentials."""
    if country and country in doc.whatsapp.by_country:
        return doc.whatsapp.by_country[country]
    return doc.whatsapp.messaging_service_sid or tenant_default
