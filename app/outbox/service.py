"""Transactional outbox: record the work with the change, send the job after commit, sweep the rest.

Each kind of work names the actor that does it (`register`), so the sweeper can re-enqueue any
kind without a hand-kept table.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Sequence

import dramatiq
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import insert_on_conflict, utcnow
from app.core.queue import PendingJob, defer, send_now
from app.outbox.models import OutboxItem

_ACTORS: dict[str, dramatiq.Actor] = {}
# Past this, a pending item is presumed lost in the queue (Redis flushed, enqueue failed) and resent.
SWEEP_AFTER = timedelta(seconds=30)
_TABLE = OutboxItem.__table__


def register(kind: str, actor: dramatiq.Actor) -> dramatiq.Actor:
    _ACTORS[kind] = actor
    return actor


def actor_for(kind: str) -> dramatiq.Actor:
    return _ACTORS[kind]


async def enqueue(session: AsyncSession, tenant_id: uuid.UUID, kind: str, ref_id: uuid.UUID, *, delay_ms: int = 0) -> None:
    """Record (or reschedule) the work in this transaction; its job is sent only after commit.

    One upsert, new row or not: enqueue runs on every accept, callback, route, send and retry."""
    now = utcnow()
    available = now + timedelta(milliseconds=delay_ms)
    stmt = insert_on_conflict(session, _TABLE).values(
        id=uuid.uuid4(), tenant_id=tenant_id, kind=kind, ref_id=ref_id, state="pending", available_at=available,
        created_at=now, updated_at=now)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["kind", "ref_id"], set_={"state": "pending", "available_at": available, "updated_at": now},
        where=_TABLE.c.tenant_id == tenant_id))
    defer(session, actor_for(kind), str(ref_id), delay_ms=delay_ms or None, tenant_id=tenant_id)


async def complete(session: AsyncSession, kind: str, ref_id: uuid.UUID) -> None:
    await session.execute(update(OutboxItem).where(OutboxItem.kind == kind, OutboxItem.ref_id == ref_id)
                          .values(state="done", updated_at=utcnow()))


async def sweep(session: AsyncSession, *, limit: int = 500) -> int:
    """Re-enqueue pending work that should have run by now. Safe on many workers at once."""
    cutoff = utcnow() - SWEEP_AFTER
    stmt = (select(OutboxItem).where(OutboxItem.state == "pending", OutboxItem.available_at < cutoff)
            .order_by(OutboxItem.available_at).limit(limit))
    if session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    items: Sequence[OutboxItem] = (await session.execute(stmt)).scalars().all()
    now = utcnow()
    for item in items:
        item.available_at = now  # swept again only if it stays pending for another SWEEP_AFTER
        item.enqueued_at = now
    await session.commit()
    sent = 0
    for item in items:
        if item.kind in _ACTORS and send_now(PendingJob(_ACTORS[item.kind], (str(item.ref_id),), None, item.tenant_id)):
            sent += 1
    return sent


async def pending_stats(session: AsyncSession) -> tuple[int, float]:
    """(pending items, age in seconds of the oldest): the outbox lag."""
    from sqlalchemy import func

    count, oldest = (await session.execute(
        select(func.count(), func.min(OutboxItem.created_at)).where(OutboxItem.state == "pending")
    )).one()
    age = (utcnow() - oldest).total_seconds() if oldest else 0.0
    return int(count), max(0.0, age)
