"""Row 3: Redis flushed and restarted with notifications queued.

A throw-away redis-server holds this stack's queues. With every notification accepted and queued and
no worker running, Redis is flushed and killed, and a new empty one starts on the same port. The
workers' own maintenance loop (the sweeper) re-enqueues from the outbox. Pass: all terminal, 0 lost.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func, select

from app.core.db import session_factory
from app.outbox.models import OutboxItem
from tests.faults.support import (
    RedisServer,
    Stack,
    battery_tenant,
    notification_body,
    post_many,
    report,
    scale,
    sends_per_notification,
    wait_terminal,
)


def jobs_in_redis(r, namespace: str) -> int:
    return sum(r.hlen(k) for k in r.scan_iter(match=f"{namespace}:*.msgs"))


async def test_redis_flushed_and_restarted_with_work_queued(client, emulator, tmp_path):
    count = scale(1000, 30)
    started = time.monotonic()
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    stack = Stack(tmp_path, "f03", NOTIFYGW_REDIS_URL=redis_server.url)
    try:
        t = await battery_tenant(client, emulator, stack.api_url)
        stack.start_api()
        ids = await post_many(stack.api_url, t.sender, [notification_body(i) for i in range(count)])
        r = redis_server.client()
        # The API hands its jobs to a background sender thread: the last ones reach Redis just after
        # their answers, so wait (briefly) for the precondition instead of racing it.
        deadline = time.monotonic() + 10
        while (queued := jobs_in_redis(r, stack.namespace)) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        async with session_factory()() as s:
            pending = (
                await s.execute(select(func.count()).select_from(OutboxItem).where(OutboxItem.state == "pending"))
            ).scalar_one()
        r.flushall()
        r.close()
        redis_server.stop()
        redis_server.start()  # a new, empty Redis on the same port
        assert redis_server.client().dbsize() == 0
        stack.start_worker(threads=8)
        counts = await wait_terminal(ids, timeout=scale(900, 180), emulator=emulator)
    finally:
        stack.close()
        redis_server.stop()

    per = sends_per_notification(emulator, t.account["account_sid"])
    report(
        3,
        "Redis flushed and restarted with work queued",
        notifications=count,
        jobs_in_redis_before_flush=queued,
        outbox_pending_before_flush=pending,
        statuses=dict(counts),
        twilio_messages=sum(per.values()),
        lost=len(set(ids) - set(per)),
        duplicates=sum(per.values()) - len(per),
        wall_seconds=round(time.monotonic() - started, 1),
    )
    assert queued >= count and pending >= count, "the work was queued when Redis lost it"
    assert sum(counts.values()) == count and set(counts) <= {"read", "delivered"}, counts
    assert set(per) == set(ids) and set(per.values()) == {1}, "0 lost, sent once each"
