from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.notify import pipeline
from app.outbox import service as outbox
from app.webhooks import service
from app.webhooks.ingest import PROCESS


@outbox.job(PROCESS, "webhooks.process_event", queue="webhooks")
async def process_event(session: AsyncSession, event_id: str) -> None:
    event, applied = await service.claim_and_complete(session, PROCESS, uuid.UUID(event_id))
    if event is not None and not applied:
        await service.apply(session, event)
        await pipeline.publish_updates(session)
