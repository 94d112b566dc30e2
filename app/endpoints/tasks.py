"""The webhook delivery actor, on a queue of its own: slow tenant servers must not hold up sending."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.endpoints import delivery
from app.endpoints.events import DELIVER
from app.outbox import service as outbox


@outbox.job(DELIVER, "webhooks.deliver", queue="endpoint_deliveries")
async def deliver_webhook(session: AsyncSession, delivery_id: str) -> None:
    await delivery.deliver(session, uuid.UUID(delivery_id))
