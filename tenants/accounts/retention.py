"""Per-tenant retention settings: how long bodies stay in clear, and how long metadata stays at all.

Stored on the tenant row (NULL: the platform default); read and replaced by the tenant admin with
GET/PUT /v1/settings/retention, every change audit-logged. The batched job that applies them lives
in app/retention/service.py (it touches app/'s tables); docs/data.md says what each setting reaches.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound, ValidationFailed
from tenants.accounts.models import Tenant
from tenants.accounts.schemas import RetentionSettings
from tenants.audit import service as audit

DEFAULT_BODY_DAYS = 30
DEFAULT_METADATA_DAYS = 400


def effective(tenant: Tenant) -> RetentionSettings:
    return RetentionSettings(
        body_days=tenant.body_retention_days or DEFAULT_BODY_DAYS,
        metadata_days=tenant.metadata_retention_days or DEFAULT_METADATA_DAYS,
    )


def days(body: int | None, metadata: int | None) -> tuple[int, int]:
    """(body days, metadata days) in force for the stored values (NULL: the default)."""
    return body or DEFAULT_BODY_DAYS, metadata or DEFAULT_METADATA_DAYS


async def _tenant(session: AsyncSession, tenant_id: uuid.UUID, *, lock: bool = False) -> Tenant:
    tenant = await session.get(Tenant, tenant_id, with_for_update=lock)
    if tenant is None:
        raise NotFound("tenant not found")
    return tenant


async def get_settings(session: AsyncSession, tenant_id: uuid.UUID) -> RetentionSettings:
    return effective(await _tenant(session, tenant_id))


async def put_settings(
    session: AsyncSession, tenant_id: uuid.UUID, doc: RetentionSettings, *, actor: Any
) -> RetentionSettings:
    if doc.body_days > doc.metadata_days:
        raise ValidationFailed(
            f"body_days ({doc.body_days}) may not exceed metadata_days ({doc.metadata_days}): "
            "a body cannot outlive the row that holds it",
            pointer="/body_days",
        )
    tenant = await _tenant(session, tenant_id, lock=True)
    before = effective(tenant)
    tenant.body_retention_days, tenant.metadata_retention_days = doc.body_days, doc.metadata_days
    await session.flush()
    if before != doc:
        audit.record(
            session,
            tenant_id=tenant_id,
            actor=actor,
            action="retention.updated",
            target_type="retention",
            target_id=None,
            before={"body_days": before.body_days, "metadata_days": before.metadata_days},
            after={"body_days": doc.body_days, "metadata_days": doc.metadata_days},
        )
    return effective(tenant)
