"""Waiting for the delivery pipeline, for tests that run the real worker (see conftest.delivery_worker)."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func, select

from app.core.db import session_factory, utcnow
from app.core.queue import get_broker
from app.endpoints.events import DELIVER
from app.outbox.models import OutboxItem

QUEUE = "endpoint_deliveries"


async def settle(timeout: float = 30.0) -> None:
    """Wait until no delivery job is queued, delayed, running or due in the outbox (twice in a row)."""
    broker, deadline, quiet = get_broker(), time.monotonic() + timeout, 0
    while quiet < 2:
        assert time.monotonic() < deadline, "webhook deliveries did not settle"
        async with session_factory()() as s:
            busy = (
                await s.execute(
                    select(func.count())
                    .select_from(OutboxItem)
                    .where(
                        OutboxItem.kind == DELIVER, OutboxItem.state == "pending", OutboxItem.available_at <= utcnow()
                    )
                )
            ).scalar_one()
        # A message stays in "<queue>.msgs" from enqueue until its ack: queued, delayed or running.
        for queue in (QUEUE, f"{QUEUE}.DQ"):
            busy = busy or broker.client.hlen(f"{broker.namespace}:{queue}.msgs")
        quiet = 0 if busy else quiet + 1
        await asyncio.sleep(0.05)
