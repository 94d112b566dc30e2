"""Applying stored provider events in batches: the webhook drain.

Every stored callback nudges the drain (app/webhooks/ingest.py); the nudges coalesce
(app/core/queue.py), and a drain takes up to BATCH waiting events in one transaction:

- one statement claims them: their outbox rows, oldest first, `FOR UPDATE SKIP LOCKED` (drains on
  other workers take the next ones), are marked done, and the events processed, returned with their
  applied marker;
- one query reads and locks every attempt the status events name (lookups.attempts_named);
- the events are applied in the order they arrived, by the same code as one event (service.apply),
  and flushed once: the statuses of one attempt become one UPDATE, the timeline rows one INSERT
  (a status event needs no query of its own; an inbound one still runs its own, with autoflush).

A batch that fails is rolled back whole, and each of its events is sent on as a job of its own
(webhooks.process_event), which counts its tries and dead-letters a poison event alone. The outbox
rows stay the record: a nudge lost with Redis is made good by the sweeper, which resends the rows
left pending as those single-event jobs.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from sqlalchemy import bindparam, literal_column, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utcnow
from app.core.queue import PendingJob
from app.core.repository import owned_by
from app.notify import lookups, pipeline
from app.notify.models import Attempt, Notification
from app.outbox import service as outbox
from app.outbox.models import OutboxItem
from app.webhooks import service
from app.webhooks.ingest import PROCESS
from app.webhooks.models import RawEvent

# Large enough that a burst costs a few round trips per batch, small enough that a batch's row locks
# (every attempt it names) are held for milliseconds.
BATCH = 64
PER_TENANT = 16
_OUTBOX = OutboxItem.__table__
# Inline, not a parameter: a generic plan of the prepared statement could not use the partial index.
_PENDING: Any = literal_column("'pending'")


async def claim(session: AsyncSession, limit: int = BATCH) -> list[tuple[RawEvent, bool]]:
    """Claim up to `limit` waiting events, oldest first: (event, applied before), in arrival order."""
    if session.get_bind().dialect.name != "postgresql":
        refs = (
            await session.execute(
                select(OutboxItem.ref_id)
                .where(OutboxItem.kind == PROCESS, OutboxItem.state == "pending", OutboxItem.available_at <= utcnow())
                .order_by(OutboxItem.available_at)
                .limit(limit)
            )
        ).scalars()
        claimed = [await service.claim_and_complete(session, PROCESS, ref) for ref in list(refs)]
        found = [(event, applied) for event, applied in claimed if event is not None]
    else:
        # An inbound event's marker (its message, by SID) is checked as it is applied: apply_batch.
        rows = await session.execute(_CLAIM_BATCH, {"batch_size": limit, "claimed_at": utcnow()})
        found = [(event, bool(applied)) for event, applied in rows]
    return sorted(found, key=lambda pair: (pair[0].received_at, pair[0].id))


def _claim_batch(limit: Any, now: Any) -> Any:
    waiting = _fair_share(limit, now).cte("waiting")
    done = (
        update(OutboxItem)
        .where(OutboxItem.id.in_(select(waiting.c.id)))
        .values(state="done", tries=0, updated_at=now)
        .returning(OutboxItem.ref_id, OutboxItem.tenant_id)
        .cte("done")
    )
    return (
        update(RawEvent)
        .where(RawEvent.id == done.c.ref_id, owned_by(RawEvent, done.c.tenant_id), RawEvent.processed_at.is_(None))
        .values(processed_at=now)
        .returning(RawEvent, service.APPLIED_MARKER.label("applied"))
        .execution_options(synchronize_session=False)
    )


def _fair_share(limit: Any, now: Any) -> Any:
    """The ids of up to `limit` waiting events, at most PER_TENANT of each tenant's oldest: a tenant's
    flood of callbacks does not hold up another's (the lanes of the other queues, for a table queue).

    The tenants with waiting events come from a loose index scan (a recursive CTE stepping through
    ix_outbox_pending_by_tenant, one probe per tenant), not from reading the whole backlog."""
    pending = _OUTBOX.alias("pending")
    first_tenant = (
        select(pending.c.tenant_id)
        .where(pending.c.kind == PROCESS, pending.c.state == _PENDING)
        .order_by(pending.c.tenant_id)
        .limit(1)
        .cte("tenants", recursive=True)
    )
    later = _OUTBOX.alias("later")
    next_tenant = (
        select(later.c.tenant_id)
        .where(later.c.kind == PROCESS, later.c.state == _PENDING, later.c.tenant_id > first_tenant.c.tenant_id)
        .order_by(later.c.tenant_id)
        .limit(1)
        .scalar_subquery()
    )
    tenants = first_tenant.union_all(select(next_tenant).where(first_tenant.c.tenant_id.is_not(None)))
    own = _OUTBOX.alias("own")
    oldest = (
        select(own.c.id)
        .where(
            own.c.kind == PROCESS,
            own.c.state == _PENDING,
            owned_by(own.c, tenants.c.tenant_id),
            own.c.available_at <= now,
        )
        .order_by(own.c.available_at)
        .limit(PER_TENANT)
        .with_for_update(skip_locked=True)
        .lateral("oldest")
    )
    return select(oldest.c.id).select_from(tenants).join(oldest, true()).limit(limit)


# Built once with bound parameters: built per claim, this statement alone took 13 % of a worker's
# Python time (py-spy), constructing itself and its cache key (app/notify/lookups.py says more).
_CLAIM_BATCH = _claim_batch(bindparam("batch_size"), bindparam("claimed_at"))


class _Named:
    """The attempts a batch's status events name, read and locked at once, answering each event's
    lookup with lookups.find_attempt's rules; an event they cannot answer asks the database itself."""

    def __init__(self, rows: list[tuple[Notification, Attempt]]) -> None:
        self.by_id = {(a.tenant_id, a.id): (a, n) for n, a in rows}
        self.notifications = [n for n, _ in rows]

    async def __call__(
        self, session: AsyncSession, tenant_id: uuid.UUID, attempt_ref: object, sid: str
    ) -> tuple[Attempt, Notification] | None:
        ref = lookups.as_uuid(attempt_ref)
        found = self.by_id.get((tenant_id, ref)) if ref else None
        if found is not None and found[0].provider_message_id in (None, sid):
            return found
        # Read now, not kept from the batch's read: an earlier event of the batch may have linked this SID.
        for attempt, n in self.by_id.values():
            if attempt.tenant_id == tenant_id and attempt.provider == "twilio" and attempt.provider_message_id == sid:
                return attempt, n
        return await service.find_twilio_attempt(session, tenant_id, attempt_ref, sid)


async def apply_batch(session: AsyncSession, batch: list[tuple[RawEvent, bool]]) -> None:
    """Apply the claimed events in order, each at most once, with one read of their attempts."""
    by_id: list[tuple[uuid.UUID, uuid.UUID]] = []
    by_sid: list[tuple[uuid.UUID, str]] = []
    for event, applied in batch:
        if event.kind == "status" and not applied:
            ref, sid = service.status_names(event)
            ref_id = lookups.as_uuid(ref)
            if sid and ref_id:
                by_id.append((event.tenant_id, ref_id))
            if sid:
                by_sid.append((event.tenant_id, sid))
    named = _Named(await lookups.attempts_named(session, "twilio", by_id, by_sid))
    locked = {n.id: n for n in named.notifications}
    for event, applied in batch:
        # An inbound message's marker is its row by SID: an earlier event of this batch may have written it.
        if applied or (event.kind == "inbound" and await service.already_applied(session, event)):
            continue
        await service.apply(session, event, named)
        # notification.updated once per event that moved a notification, as when they ran one by one.
        locked.update({key: n for key, (n, _) in session.info.get("notification_status_at_lock", {}).items()})
        await pipeline.publish_updates(session)
        for n in locked.values():
            pipeline.remember_locked(session, n)
    session.info.pop("notification_status_at_lock", None)
    # Statuses only change attributes: the flush writes each attempt and notification once, and the
    # timeline rows in one INSERT, however many of the batch's events touched them.
    await session.flush()


def may_have_more(batch: list[tuple[RawEvent, bool]]) -> bool:
    """Whether events may still be waiting: the batch is full, or it took a whole share of one tenant's.
    Then the drain nudges itself; else the next stored callback's nudge (or the sweep) will do."""
    shares = Counter(event.tenant_id for event, _ in batch)
    return len(batch) >= BATCH or max(shares.values(), default=0) >= PER_TENANT


def one_by_one(events: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
    """Send each event of a failed batch as a job of its own: (event id, tenant id) pairs."""
    actor = outbox.actor_for(PROCESS).bound()
    for event_id, tenant_id in events:
        PendingJob(actor, (str(event_id),), None, tenant_id).send()
