"""A flood of one tenant's Twilio callbacks: every one is stored (never 429, never 5xx), and another
tenant's callbacks are processed without waiting for the flood's backlog (issue 11, section 10).

Ingest only verifies, stores and nudges (app/webhooks/ingest.py); the drain claims each batch with at
most a fair share of every tenant's waiting events (app/webhooks/drain.py), so the flood waits on itself.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections import Counter
from urllib.parse import urlencode

import httpx
from sqlalchemy import func, select

from app.core.db import session_factory
from app.webhooks.models import RawEvent
from channels.signatures import compute_twilio_signature
from tests.app.webhooks.test_twilio_webhooks import status_form
from tests.conftest import GATEWAY_URL
from tests.support.gateway import settle, wired_tenant

FLOOD = 300
PATH = "/webhooks/twilio/status"


async def _fire(http: httpx.AsyncClient, sem: asyncio.Semaphore, account: dict, statuses: Counter) -> None:
    pairs = status_form(account["account_sid"], "SM" + secrets.token_hex(16), "delivered")
    signature = compute_twilio_signature(account["auth_token"], GATEWAY_URL + PATH, pairs)
    async with sem:
        r = await http.post(
            PATH,
            content=urlencode(pairs),
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
        )
    statuses[r.status_code] += 1


async def _events(tenant_id: str) -> list[RawEvent]:
    async with session_factory()() as s:
        return list((await s.execute(select(RawEvent).where(RawEvent.tenant_id == uuid.UUID(tenant_id)))).scalars())


async def test_a_callback_flood_is_stored_whole_and_does_not_hold_up_another_tenant(client, emulator, gateway, worker):
    flooder = await wired_tenant(client, emulator, gateway)
    other = await wired_tenant(client, emulator, gateway)
    statuses: Counter[int] = Counter()
    worker.pause()  # the whole flood is backlogged before the other tenant's callbacks arrive
    try:
        sem = asyncio.Semaphore(32)
        async with httpx.AsyncClient(base_url=GATEWAY_URL, timeout=30) as http:
            await asyncio.gather(*(_fire(http, sem, flooder.account, statuses) for _ in range(FLOOD)))
            await asyncio.gather(*(_fire(http, sem, other.account, statuses) for _ in range(5)))
    finally:
        worker.resume()
    assert statuses == Counter({204: FLOOD + 5})  # no 429, no 503: a refused callback is a lost one
    await settle(emulator)

    flood, others = await _events(flooder.id), await _events(other.id)
    assert len(flood) == FLOOD and len(others) == 5
    assert all(e.processed_at is not None for e in flood + others)
    # Sent last, processed before the flood's backlog was through: the other lane did not wait for it.
    assert max(e.processed_at for e in others) < max(e.processed_at for e in flood)
    async with session_factory()() as s:  # nothing processed twice or left behind
        assert (
            await s.execute(select(func.count()).select_from(RawEvent).where(RawEvent.processed_at.is_(None)))
        ).scalar_one() == 0
