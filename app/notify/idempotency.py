"""Idempotency-Key, after the IETF httpapi draft.

The key is claimed in the request's own unit of work, with the notification it creates: one
transaction, one commit. The claim is one INSERT ... ON CONFLICT on the record's unique
(tenant, environment, key) that already holds the response (the notification's id and time are
chosen before it is written), so a new key costs one statement. On PostgreSQL a concurrent duplicate's INSERT waits on that index until
the first request commits (it then conflicts and replays the stored response) or rolls back (it
then claims the key itself); on SQLite units of work are serialised by BEGIN IMMEDIATE. A failed
request rolls its claim back with everything else. A second session would deadlock with the
request's own on SQLite, whose write lock the request already holds (issue 11, §2).

Keys are per environment: a test key never sees, nor replays, a live key's response.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec
from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import get_settings
from app.core.db import insert_on_conflict, table_of, utcnow
from app.core.errors import AppError, Conflict, ValidationFailed
from app.core.repository import owned_by
from app.notify.models import IdempotencyRecord

KEEP_FOR = timedelta(hours=24)
# Records "in_flight" are never visible to another request now (claim and completion commit together);
# one left by a release that claimed in its own transaction is taken over after this long.
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
    """Same request = same JSON value, whatever its key order or whitespace.

    Keyed (HMAC-SHA256 under the pepper): a plain hash of a request whose other fields the database
    shows would give away a short secret in it (a six-digit code in a sensitive variable) to anyone who
    tries the million candidates."""
    return hmac.new(
        get_settings().pepper.get().encode(), msgspec.json.encode(payload, order="sorted"), hashlib.sha256
    ).digest()


def legacy_fingerprint(payload: Any) -> bytes:
    """The unkeyed hash that records stored before the keyed one hold; gone with KEEP_FOR after the
    release that keyed it (then remove it, and `legacy` in claim)."""
    return hashlib.sha256(msgspec.json.encode(payload, order="sorted")).digest()


def _scope(tenant_id: uuid.UUID, environment: str, key: str) -> tuple[Any, ...]:
    return (
        owned_by(IdempotencyRecord, tenant_id),
        IdempotencyRecord.environment == environment,
        IdempotencyRecord.key == key,
    )


_CLAIMS: dict[str, Any] = {}


def _claim_statement(session: AsyncSession) -> Any:
    """The claim's upsert, built once per dialect (its values are bound at execution): SQLAlchemy
    memoizes a statement's cache key, so no request builds it or walks it again."""
    dialect = session.get_bind().dialect.name
    stmt = _CLAIMS.get(dialect)
    if stmt is None:
        table = table_of(IdempotencyRecord)
        cols = ("id", "tenant_id", "environment", "key", "request_hash", "state", "response_status")
        values = {c: bindparam(c, type_=table.c[c].type) for c in (*cols, "response_body", "expires_at", "created_at")}
        insert = insert_on_conflict(session, table).values(values)
        fresh = insert.excluded
        taken_over = ("request_hash", "state", "response_status", "response_body", "expires_at", "created_at")
        stmt = _CLAIMS[dialect] = insert.on_conflict_do_update(
            index_elements=["tenant_id", "environment", "key"],
            set_={c: fresh[c] for c in taken_over},
            where=or_(
                table.c.expires_at <= bindparam("now", type_=table.c.expires_at.type),
                and_(
                    table.c.state == "in_flight",
                    table.c.created_at <= bindparam("stale_before", type_=table.c.created_at.type),
                ),
            ),
        ).returning(table.c.id)
    return stmt


async def claim(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    environment: str,
    key: str,
    request_hash: bytes,
    status: int,
    body: dict[str, Any],
    legacy: bytes | None = None,
) -> Replay | None:
    """Claim the key in `session`, recording the response this request will give, or return the stored
    response to replay. 422 for another body.

    One statement for a new key: claim and response commit together with the notification, so no other
    request ever sees this record unfinished, and the record is written complete rather than claimed and
    then updated. A record that has expired (or an "in_flight" claim of an older release past CLAIM_TTL)
    is taken over by the same statement's ON CONFLICT ... DO UPDATE WHERE."""
    now = utcnow()
    params = {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "environment": environment,
        "key": key,
        "request_hash": request_hash,
        "state": "completed",
        "response_status": status,
        "response_body": body,
        "expires_at": now + KEEP_FOR,
        "created_at": now,
        "stale_before": now - CLAIM_TTL,
        "now": now,
    }
    claimed = (await session.execute(_claim_statement(session), params)).first()
    if claimed is not None:
        return None
    scope = _scope(tenant_id, environment, key)
    existing = (await session.execute(select(IdempotencyRecord).where(*scope))).scalar_one_or_none()
    if existing is None or existing.state == "in_flight":  # gone again, or a claim of an older release
        raise Conflict("a request with this Idempotency-Key is still in flight; retry shortly")
    if existing.request_hash not in (request_hash, legacy):
        raise ValidationFailed(
            "this Idempotency-Key was used with a different request body",
            pointer="/",
            errors=[{"pointer": "/", "detail": "body differs from the first use of this key"}],
        )
    return Replay(existing.response_status or 200, existing.response_body or {})
