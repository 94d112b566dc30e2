"""Row 1: SIGKILL a worker every few seconds during in-flight sends (the emulator answers after 300 ms).

Pass: every notification reaches a terminal state; a duplicate send happens only for a send cut off
mid-call (at most one per cut-off send, docs/delivery-guarantees.md), and each is flagged.
"""

from __future__ import annotations

import asyncio
import random
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


async def test_sigkill_workers_during_sends(client, emulator, tmp_path):
    count, max_kills = scale(1000, 60), scale(40, 4)
    started = time.monotonic()
    stack = Stack(tmp_path, "f01")
    try:
        t = await battery_tenant(client, emulator, stack.api_url)
        emulator.configure(response_latency_seconds=0.3)
        stack.start_api()
        ids = await post_many(stack.api_url, t.sender, [notification_body(i) for i in range(count)])

        cut_off: set = set()  # (attempt id, sending_started_at): each send a kill interrupted
        kills = 0
        while kills < max_kills and await unsent(ids) and (FULL or not cut_off):
            booted = utcnow()
            proc = stack.start_worker(threads=8)
            await until_sending(after=booted)
            await asyncio.sleep(random.uniform(1.0, 3.0) if FULL else random.uniform(0.3, 0.8))
            # Kill the moment a send of this worker is in flight: after the sleep it may have sent all.
            await until_sending(after=booted, timeout=5.0, required=False)
            stack.stop_worker(proc, signal.SIGKILL)
            kills += 1
            cut_off |= await sending_without_sid()  # only the killed worker was sending
        stack.start_worker(threads=8)  # the survivor; its maintenance resends what was cut off
        counts = await wait_terminal(ids, timeout=scale(1200, 240), emulator=emulator)
    finally:
        stack.close()
        emulator.configure(response_latency_seconds=0.0)

    per = sends_per_notification(emulator, t.account["account_sid"])
    duplicated = {nid for nid, c in per.items() if c > 1}
    extra = sum(per.values()) - len(per)
    flagged = await flagged_notifications()
    report(
        1,
        "SIGKILL workers during sends",
        notifications=count,
        kills=kills,
        sends_cut_off=len(cut_off),
        statuses=dict(counts),
        twilio_messages=sum(per.values()),
        duplicated_notifications=len(duplicated),
        extra_sends=extra,
        flagged=len(flagged),
        duplicates_unflagged=len(duplicated - flagged),
        wall_seconds=round(time.monotonic() - started, 1),
    )
    assert sum(counts.values()) == count and set(counts) <= {"read", "delivered"}, counts
    assert set(per) == set(ids), "every notification was sent"
    assert kills > 0 and cut_off, "the kills must land mid-send for this test to mean anything"
    assert duplicated <= flagged, "every duplicate send is flagged"
    assert extra <= len(cut_off), "at most one duplicate per send cut off mid-call"
