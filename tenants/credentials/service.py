"""Tenant provider credentials: verified with the provider before storing, sealed at rest, masked on read.

Written once for every provider, over its `ProviderSpec` (tenants/credentials/specs.py).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import session_factory
from app.core.errors import DependencyUnavailable, NotFound, ValidationFailed
from app.core.repository import repository
from channels.base import ChannelError, FailureClass
from tenants.audit import service as audit
from tenants.credentials import cache
from tenants.credentials.models import SendgridCredential, TwilioCredential
from tenants.credentials.specs import SENDGRID, TWILIO, ProviderSpec, sendgrid_secrets, twilio_secrets

__all__ = ["sendgrid_secrets", "twilio_secrets"]  # re-exported: the send path decrypts through these

Spec = ProviderSpec[Any, Any, Any]


def _provider_refused(spec: Spec, exc: ChannelError) -> Exception:
    if exc.failure in (FailureClass.TRANSIENT, FailureClass.RATE_LIMITED):
        return DependencyUnavailable(f"{spec.title} did not answer; nothing was stored", retry_after=10)
    if exc.failure is FailureClass.BAD_CREDENTIALS:
        return ValidationFailed(f"{spec.title} rejected these credentials", pointer=spec.pointer)
    return ValidationFailed(f"{spec.title} refused these credentials: {exc.message}", pointer=spec.pointer)


def render(spec: Spec, row: Any) -> Any:
    """The masked body of GET and PUT /v1/providers/<name>."""
    snap = spec.snapshot(row, spec.secrets(row))
    return spec.data_out(
        **{k: v for k, v in snap.items() if k != "status"},
        status=row.status,
        status_reason=row.status_reason,
        updated_at=row.updated_at,
    )


async def put(session: AsyncSession, spec: Spec, tenant_id: uuid.UUID, data: Any, *, actor: Any) -> Any:
    """Check, verify with the provider (nothing is stored when it refuses), then store."""
    spec.check(data)
    try:
        await spec.channel(spec.creds_of(data)).verify_credentials()
    except ChannelError as exc:
        raise _provider_refused(spec, exc) from None
    if spec.claim is not None:
        await spec.claim(session, tenant_id, data)
    return await store(session, spec, tenant_id, data, actor=actor)


async def store(session: AsyncSession, spec: Spec, tenant_id: uuid.UUID, data: Any, *, actor: Any) -> Any:
    """Seal, store and audit credentials already verified (or, in dev, pointing at the in-process emulator)."""
    repo = repository(session, tenant_id, spec.model)
    row = await repo.one_by()
    before = spec.snapshot(row, spec.secrets(row)) if row is not None else None
    old_key = spec.cache_key(row) if row is not None and spec.cache_key else None
    if row is None:
        row = repo.add(spec.model(version=0))
    spec.fill(tenant_id, row, data)
    row.status, row.status_reason = "valid", None
    row.version += 1
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # a concurrent PUT by another tenant won the unique value (Twilio: the AccountSid)
        if spec.taken is None:
            raise
        raise spec.taken() from None
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action=f"provider.{spec.name}.{'updated' if before else 'created'}",
        target_type=spec.table,
        target_id=spec.target_id(row),
        before=before,
        after=spec.snapshot(row, spec.creds_of(data)),
    )
    if spec.cache_key is not None:
        cache.invalidate(spec.cache_key(row))
        if old_key and old_key != spec.cache_key(row):
            cache.invalidate(old_key)
    return row


async def find(session: AsyncSession, spec: Spec, tenant_id: uuid.UUID) -> Any:
    return await repository(session, tenant_id, spec.model).one_by()


async def get(session: AsyncSession, spec: Spec, tenant_id: uuid.UUID) -> Any:
    row = await find(session, spec, tenant_id)
    if row is None:
        raise NotFound(f"no {spec.title} credentials are configured")
    return row


async def delete(session: AsyncSession, spec: Spec, tenant_id: uuid.UUID, *, actor: Any) -> None:
    row = await get(session, spec, tenant_id)
    before = spec.snapshot(row, spec.secrets(row))
    await session.delete(row)
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action=f"provider.{spec.name}.deleted",
        target_type=spec.table,
        target_id=spec.target_id(row),
        before=before,
    )
    if spec.cache_key is not None:
        cache.invalidate(spec.cache_key(row))


async def mark_invalid(session: AsyncSession, spec: Spec, tenant_id: uuid.UUID, reason: str, *, actor: Any) -> None:
    """The provider refused the stored credentials at send time: routing skips them until they are fixed."""
    row = await find(session, spec, tenant_id)
    if row is None or row.status == "invalid":
        return
    row.status, row.status_reason = "invalid", reason[:200]
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action=f"provider.{spec.name}.invalidated",
        target_type=spec.table,
        target_id=spec.target_id(row),
        before={"status": "valid"},
        after={"status": "invalid", "reason": row.status_reason},
    )


# The names the rest of the code reads credentials by (one line each: which provider, nothing more).


async def find_twilio(session: AsyncSession, tenant_id: uuid.UUID) -> TwilioCredential | None:
    return await find(session, TWILIO, tenant_id)  # type: ignore[no-any-return]


async def find_sendgrid(session: AsyncSession, tenant_id: uuid.UUID) -> SendgridCredential | None:
    return await find(session, SENDGRID, tenant_id)  # type: ignore[no-any-return]


async def mark_twilio_invalid(session: AsyncSession, tenant_id: uuid.UUID, reason: str, *, actor: Any) -> None:
    await mark_invalid(session, TWILIO, tenant_id, reason, actor=actor)


async def twilio_for_account(account_sid: str) -> cache.CachedTwilio | None:
    """The tenant and decrypted credentials owning an AccountSid (webhook path), cached briefly: a hit
    needs no database at all; a miss is one indexed lookup, in a session of its own."""
    hit, entry = cache.get(account_sid)
    if hit:
        return entry
    async with session_factory()() as session:
        row = (
            await session.execute(select(TwilioCredential).where(TwilioCredential.account_sid == account_sid))
        ).scalar_one_or_none()
    entry = cache.CachedTwilio(row.tenant_id, twilio_secrets(row), time.monotonic()) if row else None
    cache.put(account_sid, entry)
    return entry
