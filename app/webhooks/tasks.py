from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.logging import get_logger
from app.core.queue import defer, task
from app.notify import pipeline
from app.outbox import service as outbox
from app.webhooks import drain, service
from app.webhooks.ingest import DRAIN_ACTOR, PROCESS

log = get_logger("notifygw.webhooks")


@outbox.job(PROCESS, "webhooks.process_event", queue="webhooks")
async def process_event(session: AsyncSession, event_id: str) -> None:
    """One event: what the sweeper resends, and how a failed batch's events are retried alone."""
    event, applied = await service.claim_and_complete(session, PROCESS, uuid.UUID(event_id))
    if event is not None and not applied:
        await service.apply(session, event)
        await pipeline.publish_updates(session)


@task(DRAIN_ACTOR, queue="webhooks", max_retries=3)
async def drain_events(session: AsyncSession) -> None:
    """A nudge: apply a batch of waiting events (app/webhooks/drain.py), and nudge again when there may
    be more. A claim that fails is retried by Dramatiq (and the sweeper backs that up)."""
    batch = await drain.claim(session)
    if not batch:
        return
    claimed = [(event.id, event.tenant_id) for event, _ in batch]
    try:
        await drain.apply_batch(session, batch)
        if drain.may_have_more(batch):
            defer(session, drain_events, coalesce=True)
        await session.commit()
    except Exception as exc:
        await session.rollback()
        log.warning("event batch failed; its events go one by one", events=len(claimed), error=type(exc).__name__)
        drain.one_by_one(claimed)
