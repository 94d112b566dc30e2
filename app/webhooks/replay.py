"""Replaying stored provider events: the same worker code runs again from the raw event.

Processing is idempotent (app/webhooks/service.py): an event already applied changes nothing, one whose
processing was lost is applied now, and applying a status never sends a message. Replay is for an
operator: after a bug in processing was fixed, or to check a message's story against what Twilio sent.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import cast, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.repository import owned_by
from app.outbox import service as outbox
from app.webhooks.ingest import PROCESS, first
from app.webhooks.models import RawEvent

MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
BATCH = 500
EventRef = tuple[uuid.UUID, uuid.UUID]  # (raw event id, tenant id)


async def events_since(
    session: AsyncSession, since: datetime, tenant_id: uuid.UUID | None, kind: str | None
) -> list[EventRef]:
    stmt = select(RawEvent.id, RawEvent.tenant_id).where(RawEvent.received_at >= since).order_by(RawEvent.received_at)
    if tenant_id:
        stmt = stmt.where(owned_by(RawEvent, tenant_id))
    if kind:
        stmt = stmt.where(RawEvent.kind == kind)
    return [(row.id, row.tenant_id) for row in await session.execute(stmt)]


async def events_of_message(
    session: AsyncSession, message_sid: str, tenant_id: uuid.UUID | None = None, since: datetime | None = None
) -> list[EventRef]:
    """The stored Twilio callbacks (status and inbound) whose form names this MessageSid, oldest first.

    On PostgreSQL a JSONB containment test on the stored form; no index serves it, so it reads the
    stored events (retention bounds them, and `since` narrows it). Events whose payload retention has
    redacted no longer name their SID and are not found: there is nothing left to apply."""
    stmt = select(RawEvent.id, RawEvent.tenant_id, RawEvent.payload).where(RawEvent.kind.in_(("status", "inbound")))
    if tenant_id:
        stmt = stmt.where(owned_by(RawEvent, tenant_id))
    if since:
        stmt = stmt.where(RawEvent.received_at >= since)
    if session.get_bind().dialect.name == "postgresql":
        names_it = json.dumps({"form": [["MessageSid", message_sid]]})
        stmt = stmt.where(cast(RawEvent.payload, JSONB).op("@>")(cast(literal(names_it), JSONB)))
    rows = (await session.execute(stmt.order_by(RawEvent.received_at))).all()
    # The containment test is the filter on PostgreSQL; this is the same test, and SQLite's only one.
    return [(row.id, row.tenant_id) for row in rows if first(row.payload.get("form", []), "MessageSid") == message_sid]


async def requeue(session: AsyncSession, events: Sequence[EventRef]) -> int:
    """Mark the events unprocessed and queue each one's processing, in batches; how many were queued."""
    for start in range(0, len(events), BATCH):
        chunk = events[start : start + BATCH]
        await session.execute(
            update(RawEvent).where(RawEvent.id.in_([event_id for event_id, _ in chunk])).values(processed_at=None)
        )
        for event_id, tenant_id in chunk:
            await outbox.enqueue(session, tenant_id, PROCESS, event_id)
        await session.commit()
    return len(events)
