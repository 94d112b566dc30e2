"""Row 7: storms of duplicate and out-of-order status callbacks.

After the pipeline has settled (some recipients are the emulator's +15005550008, whose callbacks
already come duplicated and out of order), every status callback the emulator sent is sent again,
several times, concurrently and shuffled: with its own idempotency token, with a new one, and with
none. Pass: the final states are right, every storm request is answered 2xx, and each attempt has
exactly one applied state change per real transition (no status applied twice, none after a later one).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter

import httpx
from sqlalchemy import select

from app.core.db import session_factory
from app.notify.models import Attempt, ProviderEvent
from tests.faults.support import battery_tenant, report, scale, statuses
from tests.support.gateway import notify, settle

SHUFFLED = "+15005550008"


async def applied_changes() -> Counter[tuple[str, str]]:
    async with session_factory()() as s:
        rows = (
            await s.execute(
                select(ProviderEvent.attempt_id, ProviderEvent.status).where(ProviderEvent.applied.is_(True))
            )
        ).all()
    return Counter((str(a), st) for a, st in rows)


async def test_duplicate_and_out_of_order_callback_storm(client, emulator, gateway, worker):
    count, copies = scale(300, 20), scale(4, 3)
    started = time.monotonic()
    t = await battery_tenant(client, emulator, gateway)
    ids = [await notify(client, t, to={"phone": SHUFFLED if i % 5 == 0 else f"+1415557{i:04d}"}) for i in range(count)]
    await settle(emulator, timeout=scale(600, 120))
    before = await applied_changes()

    storm = []
    for message in emulator.messages(account_sid=t.account["account_sid"]):
        for cb in message["callbacks"]:
            for k in range(copies):
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": cb["headers"]["X-Twilio-Signature"],
                }
                if k % 3 == 0:
                    headers["I-Twilio-Idempotency-Token"] = cb["headers"]["I-Twilio-Idempotency-Token"]
                elif k % 3 == 1:
                    headers["I-Twilio-Idempotency-Token"] = secrets.token_hex(8) + "-" + secrets.token_hex(12)
                storm.append((cb["url"], [tuple(p) for p in cb["params"]], headers))
    random.shuffle(storm)
    sem = asyncio.Semaphore(32)
    codes: Counter[int] = Counter()

    async def fire(http: httpx.AsyncClient, url: str, params: list, headers: dict) -> None:
        async with sem:
            r = await http.post(url, data=dict(params), headers=headers)
            codes[r.status_code] += 1

    async with httpx.AsyncClient(timeout=30) as http:
        await asyncio.gather(*(fire(http, *s) for s in storm))
    await settle(emulator, timeout=scale(600, 120))

    after = await applied_changes()
    async with session_factory()() as s:
        attempt_status = Counter((await s.execute(select(Attempt.status))).scalars().all())
    final = await statuses(ids)
    report(
        7,
        "duplicate and out-of-order callback storm",
        notifications=count,
        storm_requests=len(storm),
        storm_codes=dict(codes),
        applied_before=sum(before.values()),
        applied_after=sum(after.values()),
        applied_twice=sum(1 for v in after.values() if v > 1),
        final=dict(final),
        attempts=dict(attempt_status),
        wall_seconds=round(time.monotonic() - started, 1),
    )
    assert final == Counter({"read": count}), final
    assert set(codes) <= {200, 204}, codes
    assert after == before, "the storm applied no state change"
    assert set(after.values()) == {1}, "one state change per real transition"
    assert {st for (_, st) in after} <= {"queued", "sent", "delivered", "read"}
