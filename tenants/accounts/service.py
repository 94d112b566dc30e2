from __future__ import annotations

import re
import secrets
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, NotFound
from app.core.pagination import page_of, paginate
from tenants.accounts import quotas
from tenants.accounts.models import Tenant
from tenants.accounts.schemas import QuotasOut, TenantOut
from tenants.audit import service as audit
from tenants.auth import key_cache


def render(t: Tenant) -> TenantOut:
    return TenantOut(
        id=t.id,
        name=t.name,
        slug=t.slug,
        status=t.status,
        api_rate_per_second=t.api_rate_per_second,
        max_webhook_endpoints=t.max_webhook_endpoints,
        max_templates=t.max_templates,
        max_contacts=t.max_contacts,
        quotas=QuotasOut(**quotas.effective(t)),
        created_at=t.created_at,
    )


UPDATABLE = ("status", "api_rate_per_second", "max_webhook_endpoints", "max_templates", "max_contacts")


def snapshot(t: Tenant) -> dict[str, Any]:
    return {"name": t.name, "slug": t.slug, **{f: getattr(t, f) for f in UPDATABLE}}


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:50] or "tenant"
    return f"{slug}-{secrets.token_hex(3)}"


async def create_tenant(session: AsyncSession, *, name: str, slug: str | None, actor: Any) -> Tenant:
    tenant = Tenant(name=name, slug=slug or slugify(name), status="active")
    session.add(tenant)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(
            f"slug '{tenant.slug}' is taken", errors=[{"pointer": "/slug", "detail": "already taken"}]
        ) from None
    audit.record(
        session,
        tenant_id=tenant.id,
        actor=actor,
        action="tenant.created",
        target_type="tenant",
        target_id=tenant.id,
        after=snapshot(tenant),
    )
    return tenant


async def get_tenant(session: AsyncSession, tenant_id: uuid.UUID | str) -> Tenant:
    try:
        key = uuid.UUID(str(tenant_id))
    except ValueError:
        raise NotFound("tenant not found") from None
    tenant = await session.get(Tenant, key)
    if tenant is None:
        raise NotFound("tenant not found")
    return tenant


async def find_tenant(session: AsyncSession, ref: str) -> Tenant:
    """By id or by slug (the CLI accepts either)."""
    try:
        return await get_tenant(session, uuid.UUID(ref))
    except ValueError:
        tenant = (await session.execute(select(Tenant).where(Tenant.slug == ref))).scalar_one_or_none()
        if tenant is None:
            raise NotFound("tenant not found") from None
        return tenant


async def list_tenants(
    session: AsyncSession, *, cursor: str | None, limit: int, status: str | None = None
) -> dict[str, Any]:
    """Newest first; `status` ("active" or "suspended") narrows it (the console's operator view filters by it)."""
    stmt = select(Tenant) if status is None else select(Tenant).where(Tenant.status == status)
    rows = (await session.execute(paginate(stmt, Tenant, cursor, limit))).scalars().all()
    return page_of(rows, limit, render)


async def update_tenant(session: AsyncSession, tenant: Tenant, changes: dict[str, Any], *, actor: Any) -> Tenant:
    """`changes` holds only the fields given; None on a limit or quota means the platform default."""
    before = snapshot(tenant)
    for name, value in changes.items():
        if name not in UPDATABLE or (name == "status" and value is None):
            raise ValueError(f"not an updatable tenant field: {name}={value!r}")
        setattr(tenant, name, value)
    await session.flush()
    quotas.forget_counts(tenant.id)
    if snapshot(tenant) != before:
        audit.record(
            session,
            tenant_id=tenant.id,
            actor=actor,
            action="tenant.updated",
            target_type="tenant",
            target_id=tenant.id,
            before=before,
            after=snapshot(tenant),
        )
    key_cache.invalidate_on_commit(session, tenant_id=tenant.id)
    return tenant
