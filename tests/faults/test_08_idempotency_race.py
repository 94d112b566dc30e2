"""Row 8: 50 concurrent POSTs with one Idempotency-Key. Pass: one notification, one send.

Each round fires 50 identical requests at once at the real server; they are answered 202 (the first,
and replays of it) or 409 (still in flight: retry), never two different notifications.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import httpx
from sqlalchemy import func, select

from app.core.db import session_factory
from app.notify.models import Notification
from tests.faults.support import battery_tenant, report, scale, sends_per_notification
from tests.support.gateway import settle

CONCURRENT = 50


async def _post(http: httpx.AsyncClient, body: dict, headers: dict) -> httpx.Response:
    """A client whose connection dropped sends the same request again, with the same key: what the key
    is for. (A keep-alive connection the server closed while idle, on a loaded host, drops a request.)"""
    for attempt in range(3):
        try:
            return await http.post("/v1/notifications", json=body, headers=headers)
        except httpx.TransportError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def test_concurrent_posts_with_one_idempotency_key(client, emulator, gateway, worker):
    rounds = scale(20, 3)
    started = time.monotonic()
    t = await battery_tenant(client, emulator, gateway)
    codes: Counter[int] = Counter()
    ids_per_round: list[set[str]] = []
    limits = httpx.Limits(max_connections=CONCURRENT, max_keepalive_connections=CONCURRENT)
    async with httpx.AsyncClient(base_url=gateway, timeout=30, limits=limits) as http:
        for r in range(rounds):
            key = str(uuid.uuid4())
            body = {
                "to": {"phone": f"+1415558{r:04d}"},
                "template": "order_shipped",
                "variables": {"name": "Ava", "order": str(r)},
            }
            headers = {**t.sender, "Idempotency-Key": key}
            responses = await asyncio.gather(*(_post(http, body, headers) for _ in range(CONCURRENT)))
            codes.update(x.status_code for x in responses)
            ids_per_round.append({x.json()["id"] for x in responses if x.status_code == 202})
            replay = await http.post("/v1/notifications", json=body, headers=headers)
            assert replay.status_code == 202 and {replay.json()["id"]} == ids_per_round[-1]
    await settle(emulator, timeout=120)
    async with session_factory()() as s:
        stored = (await s.execute(select(func.count()).select_from(Notification))).scalar_one()
    per = sends_per_notification(emulator, t.account["account_sid"])
    report(
        8,
        "50 concurrent POSTs, one Idempotency-Key",
        rounds=rounds,
        requests=rounds * CONCURRENT,
        codes=dict(codes),
        notifications=stored,
        twilio_messages=sum(per.values()),
        wall_seconds=round(time.monotonic() - started, 1),
    )
    assert set(codes) <= {202, 409}, codes
    assert all(len(ids) == 1 for ids in ids_per_round), ids_per_round
    assert stored == rounds, "one notification per key"
    assert set(per) == set().union(*ids_per_round) and set(per.values()) == {1}, "one send per key"
