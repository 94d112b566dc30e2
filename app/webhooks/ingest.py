"""Receiving provider callbacks: parse, authenticate, dedupe, persist, queue, answer.

Nothing here processes an event: that happens in a worker, from the stored raw event, so the
handler answers in milliseconds and a replay runs exactly the same code.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import insert_on_conflict, utcnow
from app.core.errors import AppError, Forbidden
from app.outbox import service as outbox
from app.webhooks.models import RawEvent

PROCESS = "event.process"
_RAW_EVENTS = RawEvent.__table__


class MalformedCallback(AppError):
    status_code = 400
    title = "Malformed callback"
    type_slug = "malformed-callback"


class InvalidSignature(Forbidden):
    """One answer for an unknown AccountSid and a bad signature, so tenants can't be enumerated."""

    title = "Signature invalid"
    type_slug = "signature-invalid"

    def __init__(self) -> None:
        super().__init__("the request signature does not verify")


def parse_form(body: bytes) -> list[tuple[str, str]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedCallback("the body is not UTF-8") from None
    if "\x00" in text:
        raise MalformedCallback("the body contains NUL characters")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=500)
    except ValueError:
        raise MalformedCallback("the body is not application/x-www-form-urlencoded") from None
    if any("\x00" in k or "\x00" in v for k, v in pairs):
        raise MalformedCallback("the form contains NUL characters")
    return pairs


def first(pairs: list[tuple[str, str]] | list[list[str]], name: str) -> str | None:
    return next((v for k, v in pairs if k == name), None)


async def store(session: AsyncSession, tenant_id: uuid.UUID, kind: str, dedupe_key: str, payload: dict[str, Any],
                *, orphan: bool = False) -> bool:
    """Persist the raw event and queue its processing; False when it is a duplicate (nothing queued).

    ON CONFLICT DO NOTHING tells a duplicate in the one round trip, without a savepoint."""
    event_id, now = uuid.uuid4(), utcnow()
    stmt = insert_on_conflict(session, _RAW_EVENTS).values(
        id=event_id, tenant_id=tenant_id, kind=kind, dedupe_key=dedupe_key[:200], payload=payload, orphan=orphan,
        received_at=now, created_at=now)
    stmt = stmt.on_conflict_do_nothing(index_elements=["tenant_id", "kind", "dedupe_key"]).returning(_RAW_EVENTS.c.id)
    if (await session.execute(stmt)).first() is None:
        return False
    await outbox.enqueue(session, tenant_id, PROCESS, event_id)
    return True
