"""Idempotency-Key, after the IETF httpapi draft.

The key is claimed in its own short transaction (so a concurrent duplicate sees it at once and
gets 409), then completed in the request's transaction together with the notification. A failed
request releases its claim; a claim left by a crashed process expires after CLAIM_TTL.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import session_factory, utcnow
from app.core.errors import AppError, Conflict, ValidationFailed
from app.notify.models import IdempotencyRecord

KEEP_FOR = timedelta(hours=24)
CLAIM_TTL = timedelta(seconds=60)


class BadIdempotencyKey(AppError):
    status_code = 400
    title = "Invalid Idempotency-Key"
    type_slug = "bad-idempotency-key"


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


def check_key(key: str) -> str:
    if not key or len(key) > 255:
        raise BadIdempotencyKey("Idempotency-Key must be 1 to 255 characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise BadIdempotencyKey("Idempotency-Key must not contain control characters")
    return key


def fingerprint(payload: Any) -> bytes:
    """Same request = same JSON value, whatever its key order or whitespace."""
    return hashlib.sha256(msgspec.json.encode(payload, order="sorted")).digest()


async def claim(tenant_id: uuid.UUID, key: str, request_hash: bytes) -> Replay | None:
    """Claim the key, or return the stored response to replay. Raises 409 (in flight) or 422 (other body)."""
    now = utcnow()
    async with session_factory()() as s:
        existing = (await s.execute(select(IdempotencyRecord).where(
            IdempotencyRecord.tenant_id == tenant_id, IdempotencyRecord.key == key))).scalar_one_or_none()
        if existing is not None and (existing.expires_at <= now or
                                     (existing.state == "in_flight" and existing.created_at + CLAIM_TTL <= now)):
            await s.delete(existing)  # expired record, or an abandoned claim
            await s.flush()
            existing = None
        if existing is None:
            s.add(IdempotencyRecord(tenant_id=tenant_id, key=key, request_hash=request_hash, state="in_flight",
                                    expires_at=now + KEEP_FOR))
            try:
                await s.commit()
                return None
            except IntegrityError:
                await s.rollback()
                existing = (await s.execute(select(IdempotencyRecord).where(
                    IdempotencyRecord.tenant_id == tenant_id, IdempotencyRecord.key == key))).scalar_one()
        if existing.request_hash != request_hash:
            raise ValidationFailed("this Idempotency-Key was used with a different request body",
                                   pointer="/", errors=[{"pointer": "/", "detail": "body differs from the first use of this key"}])
        if existing.state == "in_flight":
            raise Conflict("a request with this Idempotency-Key is still in flight; retry shortly")
        return Replay(existing.response_status or 200, existing.response_body or {})


async def complete(session: AsyncSession, tenant_id: uuid.UUID, key: str, status: int, body: dict[str, Any]) -> None:
    record = (await session.execute(select(IdempotencyRecord).where(
        IdempotencyRecord.tenant_id == tenant_id, IdempotencyRecord.key == key))).scalar_one()
    record.state, record.response_status, record.response_body = "completed", status, body


async def release(tenant_id: uuid.UUID, key: str) -> None:
    async with session_factory()() as s:
        await s.execute(delete(IdempotencyRecord).where(IdempotencyRecord.tenant_id == tenant_id,
                                                        IdempotencyRecord.key == key,
                                                        IdempotencyRecord.state == "in_flight"))
        await s.commit()
