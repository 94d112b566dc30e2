"""Tenant provider credentials: verified with the provider before storing, sealed at rest, masked on read."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import providers
from app.core.errors import Conflict, DependencyUnavailable, NotFound, ValidationFailed
from channels.base import ChannelError, FailureClass, SendgridCredentials, TwilioCredentials
from tenants.audit import service as audit
from tenants.audit.service import mask
from tenants.credentials import cache
from tenants.credentials.models import SendgridCredential, TwilioCredential
from tenants.credentials.repository import SendgridCredentialRepository, TwilioCredentialRepository
from tenants.credentials.schemas import (
    SendgridCredentialsIn,
    SendgridCredentialsOut,
    TwilioCredentialsIn,
    TwilioCredentialsOut,
)
from tenants.credentials.sealing import seal, unseal

TW = TwilioCredential.__tablename__
SG = SendgridCredential.__tablename__


def _provider_refused(provider: str, exc: ChannelError, pointer: str) -> Exception:
    if exc.failure in (FailureClass.TRANSIENT, FailureClass.RATE_LIMITED):
        return DependencyUnavailable(f"{provider} did not answer; nothing was stored", retry_after=10)
    if exc.failure is FailureClass.BAD_CREDENTIALS:
        return ValidationFailed(f"{provider} rejected these credentials", pointer=pointer)
    return ValidationFailed(f"{provider} refused these credentials: {exc.message}", pointer=pointer)


# --- Twilio -----------------------------------------------------------------------------------

def twilio_secrets(row: TwilioCredential) -> TwilioCredentials:
    """Decrypt in memory only; never log or return the result."""
    return TwilioCredentials(
        account_sid=row.account_sid,
        auth_token=unseal(row.tenant_id, TW, "auth_token_enc", row.auth_token_enc),
        api_key_sid=row.api_key_sid,
        api_key_secret=unseal(row.tenant_id, TW, "api_key_secret_enc", row.api_key_secret_enc) if row.api_key_secret_enc else None,
        version=row.version,
    )


def twilio_snapshot(row: TwilioCredential, creds: TwilioCredentials) -> dict[str, Any]:
    return {"account_sid": row.account_sid, "auth_token": mask(creds.auth_token), "api_key_sid": row.api_key_sid,
            "api_key_secret": mask(creds.api_key_secret), "messaging_service_sid": row.messaging_service_sid,
            "whatsapp_from": row.whatsapp_from, "status": row.status}


def render_twilio(row: TwilioCredential) -> TwilioCredentialsOut:
    snap = twilio_snapshot(row, twilio_secrets(row))
    return TwilioCredentialsOut(**{k: v for k, v in snap.items() if k != "status"}, status=row.status,
                                status_reason=row.status_reason, updated_at=row.updated_at)


async def put_twilio(session: AsyncSession, tenant_id: uuid.UUID, data: TwilioCredentialsIn, *, actor: Any) -> TwilioCredential:
    if (data.api_key_sid is None) != (data.api_key_secret is None):
        missing = "/api_key_secret" if data.api_key_secret is None else "/api_key_sid"
        raise ValidationFailed("api_key_sid and api_key_secret go together", pointer=missing)
    owner = (await session.execute(
        select(TwilioCredential.tenant_id).where(TwilioCredential.account_sid == data.account_sid)
    )).scalar_one_or_none()
    if owner is not None and owner != tenant_id:
        raise Conflict("this Twilio AccountSid is registered to another tenant",
                       errors=[{"pointer": "/account_sid", "detail": "already registered"}])
    creds = TwilioCredentials(data.account_sid, data.auth_token, data.api_key_sid, data.api_key_secret)
    try:
        await providers.twilio().verify_account(creds)
    except ChannelError as exc:
        raise _provider_refused("Twilio", exc, "/auth_token") from None
    return await store_twilio(session, tenant_id, data, actor=actor)


async def store_twilio(session: AsyncSession, tenant_id: uuid.UUID, data: TwilioCredentialsIn, *, actor: Any) -> TwilioCredential:
    """Seal, store and audit credentials already verified (or, in dev, pointing at the in-process emulator)."""
    creds = TwilioCredentials(data.account_sid, data.auth_token, data.api_key_sid, data.api_key_secret)
    repo = TwilioCredentialRepository(session, tenant_id)
    row = await repo.one_by()
    before = twilio_snapshot(row, twilio_secrets(row)) if row is not None else None
    if row is None:
        row = repo.add(TwilioCredential(version=0))
    row.account_sid = data.account_sid
    row.auth_token_enc = seal(tenant_id, TW, "auth_token_enc", data.auth_token)
    row.api_key_sid = data.api_key_sid
    row.api_key_secret_enc = seal(tenant_id, TW, "api_key_secret_enc", data.api_key_secret) if data.api_key_secret else None
    row.messaging_service_sid = data.messaging_service_sid
    row.whatsapp_from = data.whatsapp_from
    row.status, row.status_reason = "valid", None
    row.version += 1
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # a concurrent PUT by another tenant won the AccountSid
        raise Conflict("this Twilio AccountSid is registered to another tenant",
                       errors=[{"pointer": "/account_sid", "detail": "already registered"}]) from None
    audit.record(session, tenant_id=tenant_id, actor=actor, action="provider.twilio.updated" if before else "provider.twilio.created",
                 target_type="twilio_credentials", target_id=row.account_sid, before=before,
                 after=twilio_snapshot(row, creds))
    cache.invalidate(data.account_sid)
    if before and before["account_sid"] != data.account_sid:
        cache.invalidate(before["account_sid"])
    return row


async def get_twilio(session: AsyncSession, tenant_id: uuid.UUID) -> TwilioCredential:
    row = await TwilioCredentialRepository(session, tenant_id).one_by()
    if row is None:
        raise NotFound("no Twilio credentials are configured")
    return row


async def find_twilio(session: AsyncSession, tenant_id: uuid.UUID) -> TwilioCredential | None:
    return await TwilioCredentialRepository(session, tenant_id).one_by()


async def delete_twilio(session: AsyncSession, tenant_id: uuid.UUID, *, actor: Any) -> None:
    row = await get_twilio(session, tenant_id)
    before = twilio_snapshot(row, twilio_secrets(row))
    await session.delete(row)
    audit.record(session, tenant_id=tenant_id, actor=actor, action="provider.twilio.deleted",
                 target_type="twilio_credentials", target_id=row.account_sid, before=before)
    cache.invalidate(row.account_sid)


async def mark_twilio_invalid(session: AsyncSession, tenant_id: uuid.UUID, reason: str, *, actor: Any) -> None:
    row = await find_twilio(session, tenant_id)
    if row is None or row.status == "invalid":
        return
    row.status, row.status_reason = "invalid", reason[:200]
    audit.record(session, tenant_id=tenant_id, actor=actor, action="provider.twilio.invalidated",
                 target_type="twilio_credentials", target_id=row.account_sid, before={"status": "valid"},
                 after={"status": "invalid", "reason": row.status_reason})


# --- SendGrid ---------------------------------------------------------------------------------

def sendgrid_secrets(row: SendgridCredential) -> SendgridCredentials:
    return SendgridCredentials(api_key=unseal(row.tenant_id, SG, "api_key_enc", row.api_key_enc),
                               from_email=row.from_email, from_name=row.from_name)


def sendgrid_snapshot(row: SendgridCredential, creds: SendgridCredentials) -> dict[str, Any]:
    return {"api_key": mask(creds.api_key), "from_email": row.from_email, "from_name": row.from_name,
            "event_webhook_public_key": row.event_webhook_public_key, "status": row.status}


def render_sendgrid(row: SendgridCredential) -> SendgridCredentialsOut:
    snap = sendgrid_snapshot(row, sendgrid_secrets(row))
    return SendgridCredentialsOut(**{k: v for k, v in snap.items() if k != "status"}, status=row.status,
                                  status_reason=row.status_reason, updated_at=row.updated_at)


def _check_public_key(encoded: str) -> None:
    try:
        key = load_der_public_key(base64.b64decode(encoded, validate=True))
    except ValueError:
        raise ValidationFailed("not a base64 DER public key", pointer="/event_webhook_public_key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValidationFailed("SendGrid signs events with a P-256 (secp256r1) key", pointer="/event_webhook_public_key")


async def put_sendgrid(session: AsyncSession, tenant_id: uuid.UUID, data: SendgridCredentialsIn, *, actor: Any) -> SendgridCredential:
    if data.event_webhook_public_key:
        _check_public_key(data.event_webhook_public_key)
    creds = SendgridCredentials(api_key=data.api_key, from_email=data.from_email, from_name=data.from_name)
    try:
        await providers.sendgrid().verify_key(creds)
    except ChannelError as exc:
        raise _provider_refused("SendGrid", exc, "/api_key") from None
    return await store_sendgrid(session, tenant_id, data, actor=actor)


async def store_sendgrid(session: AsyncSession, tenant_id: uuid.UUID, data: SendgridCredentialsIn, *, actor: Any) -> SendgridCredential:
    """Seal, store and audit SendGrid credentials already verified (or the dev emulator's)."""
    creds = SendgridCredentials(api_key=data.api_key, from_email=data.from_email, from_name=data.from_name)
    repo = SendgridCredentialRepository(session, tenant_id)
    row = await repo.one_by()
    before = sendgrid_snapshot(row, sendgrid_secrets(row)) if row is not None else None
    if row is None:
        row = repo.add(SendgridCredential(version=0))
    row.api_key_enc = seal(tenant_id, SG, "api_key_enc", data.api_key)
    row.from_email, row.from_name = data.from_email, data.from_name
    row.event_webhook_public_key = data.event_webhook_public_key
    row.status, row.status_reason = "valid", None
    row.version += 1
    await session.flush()
    audit.record(session, tenant_id=tenant_id, actor=actor, action="provider.sendgrid.updated" if before else "provider.sendgrid.created",
                 target_type="sendgrid_credentials", target_id=str(tenant_id), before=before, after=sendgrid_snapshot(row, creds))
    return row


async def get_sendgrid(session: AsyncSession, tenant_id: uuid.UUID) -> SendgridCredential:
    row = await SendgridCredentialRepository(session, tenant_id).one_by()
    if row is None:
        raise NotFound("no SendGrid credentials are configured")
    return row


async def find_sendgrid(session: AsyncSession, tenant_id: uuid.UUID) -> SendgridCredential | None:
    return await SendgridCredentialRepository(session, tenant_id).one_by()


async def delete_sendgrid(session: AsyncSession, tenant_id: uuid.UUID, *, actor: Any) -> None:
    row = await get_sendgrid(session, tenant_id)
    before = sendgrid_snapshot(row, sendgrid_secrets(row))
    await session.delete(row)
    audit.record(session, tenant_id=tenant_id, actor=actor, action="provider.sendgrid.deleted",
                 target_type="sendgrid_credentials", target_id=str(tenant_id), before=before)


async def twilio_for_account(session: AsyncSession, account_sid: str) -> "cache.CachedTwilio | None":
    """The tenant and decrypted credentials owning an AccountSid (webhook path): one indexed lookup, cached briefly."""
    hit, entry = cache.get(account_sid)
    if hit:
        return entry
    row = (await session.execute(select(TwilioCredential).where(TwilioCredential.account_sid == account_sid))).scalar_one_or_none()
    entry = cache.CachedTwilio(row.tenant_id, twilio_secrets(row), time.monotonic()) if row else None
    cache.put(account_sid, entry)
    return entry
