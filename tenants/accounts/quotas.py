"""Per-tenant quotas: how many webhook endpoints, templates and contacts one tenant may hold.

Each tenant row may override a platform default (NULL means the default). Going over a quota
through the API is 409 `quota-exceeded`, naming the quota and its limit.

Endpoints and templates are counted exactly, under a lock on the tenant row, so two concurrent
creates cannot both take the last place. Contacts are created on the hot path (a notification to a
new person), so they are counted from a per-process count at most TTL seconds old, plus what this
process created since: another API process may overshoot by what it created in that time. Inbound
messages and provider events never hit the quota: a person who writes to a tenant is always stored.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict
from app.core.repository import repository
from app.core.ttlcache import TTLCache
from tenants.accounts.models import Tenant
from tenants.contacts.models import Contact

# Sane defaults: room for a real integration (a few endpoints, hundreds of templates), not for fan-out.
DEFAULTS = {"webhook_endpoints": 10, "templates": 500, "contacts": 1_000_000}
COLUMNS = {
    "webhook_endpoints": Tenant.max_webhook_endpoints,
    "templates": Tenant.max_templates,
    "contacts": Tenant.max_contacts,
}
_contact_counts: TTLCache[list[int]] = TTLCache()


class QuotaExceeded(Conflict):
    title = "Quota exceeded"
    type_slug = "quota-exceeded"

    def __init__(self, quota: str, limit: int) -> None:
        super().__init__(
            f"this tenant may hold at most {limit} {quota.replace('_', ' ')}; the operator can raise it",
            quota=quota,
            limit=limit,
        )


def effective(tenant: Tenant) -> dict[str, int]:
    return {name: getattr(tenant, column.key) or DEFAULTS[name] for name, column in COLUMNS.items()}


async def _limit(session: AsyncSession, tenant_id: uuid.UUID, quota: str, *, lock: bool) -> int:
    stmt = select(COLUMNS[quota]).where(Tenant.id == tenant_id)
    value = (await session.execute(stmt.with_for_update() if lock else stmt)).scalar_one_or_none()
    return value or DEFAULTS[quota]


async def check_room(session: AsyncSession, tenant_id: uuid.UUID, quota: str, counted: Any) -> None:
    """Before creating one more row of `counted` (a mapped class with tenant_id): 409 when the tenant is full."""
    limit = await _limit(session, tenant_id, quota, lock=True)  # serialises this tenant's creates of any kind
    held = await repository(session, tenant_id, counted).count()
    if held >= limit:
        raise QuotaExceeded(quota, limit)


async def take_contact(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Before creating a contact on an API path: 409 when the tenant holds its quota of contacts.

    Limit and count come from the per-process cache (one query each per TTL, not per new person)."""
    held = _contact_counts.get(tenant_id)  # [limit, count]
    if held is None:
        limit = await _limit(session, tenant_id, "contacts", lock=False)
        count = await repository(session, tenant_id, Contact).count()
        held = [limit, count]
        _contact_counts.put(tenant_id, held)
    if held[1] >= held[0]:
        raise QuotaExceeded("contacts", held[0])
    held[1] += 1


def forget_counts(tenant_id: uuid.UUID) -> None:
    """A changed quota is checked against a fresh count (in this process at once, in others within the TTL)."""
    _contact_counts.invalidate(tenant_id)
