"""Tenant lanes: one tenant's backlog does not hold up another tenant's notifications."""

from __future__ import annotations

import asyncio
import time
import uuid

from sqlalchemy import func, select

from app.core.db import session_factory
from app.core.queue import LANES, get_broker, lane_of
from app.notify.models import Notification
from tests.support.gateway import notify, settle, wired_tenant

BACKLOG = 120


async def _accepted(tenant_id: str) -> int:
    async with session_factory()() as s:
        return (
            await s.execute(
                select(func.count())
                .select_from(Notification)
                .where(Notification.tenant_id == uuid.UUID(tenant_id), Notification.status == "accepted")
            )
        ).scalar_one()


async def test_a_tenants_backlog_does_not_hold_up_another_tenant(client, emulator, gateway, worker):
    flooder = await wired_tenant(client, emulator, gateway)
    other = await wired_tenant(client, emulator, gateway)
    while lane_of("notifications", uuid.UUID(other.id)) == lane_of("notifications", uuid.UUID(flooder.id)):
        other = await wired_tenant(client, emulator, gateway)  # 1 in LANES chance to share the lane
    assert LANES > 1
    worker.pause()
    try:
        for i in range(BACKLOG):
            await notify(client, flooder, to={"phone": f"+1415558{i:04d}"})
        late = await notify(client, other, to={"phone": "+14155559999"})
        lanes = {q for q in get_broker().get_declared_queues() if q.startswith("notifications.lane")}
        assert lane_of("notifications", uuid.UUID(flooder.id)) in lanes
    finally:
        worker.resume()

    deadline = time.monotonic() + 60
    async with session_factory()() as s:
        while (await s.get(Notification, uuid.UUID(late), populate_existing=True)).status == "accepted":
            assert time.monotonic() < deadline, "the other tenant's notification was never routed"
            await asyncio.sleep(0.02)
    still_waiting = await _accepted(flooder.id)
    # First in, first out on one queue would route all of the flooder's backlog first.
    assert still_waiting > BACKLOG // 2, f"only {still_waiting} of the flooder's {BACKLOG} were still waiting"
    await settle(emulator, timeout=120)
    assert await _accepted(flooder.id) == 0
