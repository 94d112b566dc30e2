"""Row 2: SIGTERM the workers during sends. Pass: 0 lost, 0 duplicates (a graceful stop finishes its sends)."""

from __future__ import annotations

import asyncio
import signal
import time

from app.core.db import utcnow
from tests.faults.support import (
    FULL,
    Stack,
    battery_tenant,
    flagged_notifications,
    notification_body,
    post_many,
    report,
    scale,
    sending_without_sid,
    sends_per_notification,
    unsent,
    until_sending,
    wait_terminal,
)


async def test_sigterm_workers_during_sends(client, emulator, tmp_path):
    count, max_stops = scale(1000, 30), scale(20, 2)
    started = time.monotonic()
    stack = Stack(tmp_path, "f02")
    exit_codes, stuck_after_stop = [], 0
    try:
        t = await battery_tenant(client, emulator, stack.api_url)
        emulator.configure(response_latency_seconds=0.3)
        stack.start_api()
        ids = await post_many(stack.api_url, t.sender, [notification_body(i) for i in range(count)])
        stops = 0
        while stops < max_stops and await unsent(ids):
            booted = utcnow()
            proc = stack.start_worker(threads=8)
            await until_sending(after=booted)
            await asyncio.sleep(2.0 if FULL else 1.0)
            exit_codes.append(stack.stop_worker(proc, signal.SIGTERM, timeout=90))
            stops += 1
            stuck_after_stop += len(await sending_without_sid())
        stack.start_worker(threads=8)
        counts = await wait_terminal(ids, timeout=scale(1200, 60), emulator=emulator)
    finally:
        stack.close()
        emulator.configure(response_latency_seconds=0.0)

    per = sends_per_notification(emulator, t.account["account_sid"])
    flagged = await flagged_notifications()
    report(
        2,
        "SIGTERM workers during sends",
        notifications=count,
        sigterms=stops,
        exit_codes=exit_codes,
        sends_left_mid_call=stuck_after_stop,
        statuses=dict(counts),
        twilio_messages=sum(per.values()),
        lost=len(set(ids) - set(per)),
        duplicates=sum(per.values()) - len(per),
        flagged=len(flagged),
        wall_seconds=round(time.monotonic() - started, 1),
    )
    assert sum(counts.values()) == count and set(counts) <= {"read", "delivered"}, counts
    assert set(per) == set(ids), "0 lost"
    assert set(per.values()) == {1}, "0 duplicates"
    assert stuck_after_stop == 0, "a graceful stop leaves no send cut off mid-call"
    assert not flagged
