"""Nothing lost, duplicates bounded and flagged: a Redis flush with work in flight, and workers
killed with SIGKILL in the middle of sends (see docs/delivery-guarantees.md)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from app.core.db import session_factory
from app.core.queue import get_broker
from app.notify import maintenance
from app.notify.models import Attempt, Notification
from app.outbox import service as outbox
from tests.support.gateway import notify, settle, wired_tenant

TERMINAL = {"delivered", "read", "failed", "suppressed"}


async def repair_until_settled(emulator, rounds: int = 5) -> None:
    """What the workers' maintenance loop does, with the thresholds at zero. Each sweep counts as a try
    against MAX_TRIES (10), so a sweep comes only after the workers have had a fair while to drain:
    sweeping every few seconds on a loaded machine would bury live rows as dead, which is not what
    production's doubling gaps do."""
    for _ in range(rounds):
        async with session_factory()() as s:
            await outbox.sweep(s)
        async with session_factory()() as s:
            await maintenance.requeue_stuck_sends(s)
        try:
            await settle(emulator, timeout=60)
            return
        except AssertionError:
            continue
    raise AssertionError("did not recover")


async def statuses(ids: list[str]) -> Counter[str]:
    async with session_factory()() as s:
        rows = (await s.execute(select(Notification.status))).scalars().all()
    return Counter(rows)


def sends_per_notification(emulator, account_sid: str) -> Counter[str]:
    per: Counter[str] = Counter()
    for message in emulator.messages(account_sid=account_sid):
        query = parse_qs(urlsplit(message["status_callback"] or "").query)
        per[query["n"][0]] += 1
    return per


async def test_redis_flushed_with_200_notifications_in_flight(client, emulator, gateway, worker, monkeypatch):
    monkeypatch.setattr(outbox, "SWEEP_AFTER", timedelta(0))
    t = await wired_tenant(client, emulator, gateway)
    worker.pause()
    try:
        ids = [await notify(client, t, to={"phone": f"+1415555{i:04d}"}) for i in range(200)]
        get_broker().flush_all()  # every queued job is gone
    finally:
        worker.resume()
    await repair_until_settled(emulator)
    assert await statuses(ids) == Counter({"read": 200})
    per = sends_per_notification(emulator, t.account["account_sid"])
    assert len(per) == 200 and set(per.values()) == {1}


async def until_sending(timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with session_factory()() as s:
            if (await s.execute(select(Attempt.id).where(Attempt.status == "sending").limit(1))).first():
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the worker never started sending")


def start_worker(log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dramatiq", "app.worker_entry", "--processes", "1", "--threads", "4"],
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def test_workers_killed_mid_send_lose_nothing_and_flag_duplicates(
    client, emulator, gateway, worker, monkeypatch, tmp_path
):
    monkeypatch.setattr(outbox, "SWEEP_AFTER", timedelta(0))
    monkeypatch.setattr(maintenance, "SENDING_GRACE", timedelta(0))
    t = await wired_tenant(client, emulator, gateway)
    # Slow enough that sends started before a kill are still in Twilio's hands when it lands: at 0.3 s a
    # fast machine had finished every send by then (and the test failed its own precondition).
    emulator.configure(response_latency_seconds=1.5)
    worker.pause()  # the subprocess workers do the sending
    log = open(tmp_path / "worker.log", "wb")
    stuck_at_kills = 0
    try:
        ids = [await notify(client, t, to={"phone": f"+1415556{i:04d}"}) for i in range(60)]
        for _ in range(3):
            proc = start_worker(log)
            await until_sending()  # kill it with sends under way, not before it starts
            await asyncio.sleep(0.5)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            async with session_factory()() as s:
                stuck_at_kills += len((await s.execute(select(Attempt.id).where(Attempt.status == "sending"))).all())
            # The dead worker's jobs are found again through the outbox, not by Dramatiq's heartbeat.
            async with session_factory()() as s:
                await maintenance.requeue_stuck_sends(s)
    finally:
        log.close()
        get_broker().flush_all()  # drop the dead workers' unacked messages; the outbox has the truth
        worker.resume()
    emulator.configure(response_latency_seconds=0.0)
    await repair_until_settled(emulator)

    assert sum((await statuses(ids)).values()) == 60
    assert set(await statuses(ids)) <= {"read", "delivered"}, await statuses(ids)
    per = sends_per_notification(emulator, t.account["account_sid"])
    assert set(per) == set(ids)
    duplicated = {nid for nid, count in per.items() if count > 1}
    async with session_factory()() as s:
        flagged = {
            str(n)
            for n in (
                await s.execute(select(Attempt.notification_id).where(Attempt.possible_duplicate.is_(True)))
            ).scalars()
        }
    assert stuck_at_kills > 0, "the kills must land mid-send for this test to mean anything"
    assert duplicated <= flagged, "every duplicate send is flagged"
    assert len(duplicated) <= stuck_at_kills, "duplicates are bounded by the sends cut off mid-call"
