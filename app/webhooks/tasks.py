from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.queue import task
from app.notify import pipeline
from app.outbox import service as outbox
from app.webhooks import service
from app.webhooks.ingest import PROCESS


@task("webhooks.process_event", queue="webhooks")
async def process_event(session: AsyncSession, event_id: str) -> None:
    ref = uuid.UUID(event_id)
    event = await service.claim(session, ref)
    if event is not None:
        await service.process(session, event)
        await pipeline.publish_updates(session)
    await outbox.complete(session, PROCESS, ref)


outbox.register(PROCESS, process_event)
