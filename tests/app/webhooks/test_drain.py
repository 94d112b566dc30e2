"""The webhook drain (app/webhooks/drain.py): stored events applied in batches, shared fairly between
tenants, and a poison event isolated from the rest of its batch."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections import Counter

from sqlalchemy import select

from app.core.db import session_factory
from app.core.queue import PendingJob, get_broker, sender
from app.outbox.models import OutboxItem
from app.webhooks import drain, ingest
from app.webhooks.models import RawEvent
from app.webhooks.tasks import drain_events
from tests.app.webhooks.test_twilio_webhooks import post_signed, status_form
from tests.support.gateway import settle, wired_tenant

PATH = "/webhooks/twilio/status"


async def _post_statuses(client, tenant, count: int) -> None:
    for _ in range(count):
        pairs = status_form(tenant.account["account_sid"], "SM" + secrets.token_hex(16), "delivered")
        assert (await post_signed(client, PATH, pairs, tenant.account["auth_token"])).status_code == 204


async def _events(tenant_id: str) -> list[RawEvent]:
    async with session_factory()() as s:
        stmt = select(RawEvent).where(RawEvent.tenant_id == uuid.UUID(tenant_id))
        return list((await s.execute(stmt)).scalars())


async def test_a_batch_takes_at_most_a_fair_share_of_each_tenants_backlog(client, emulator, gateway, worker):
    flooder = await wired_tenant(client, emulator, gateway)
    quiet = await wired_tenant(client, emulator, gateway)
    worker.pause()
    try:
        await _post_statuses(client, flooder, drain.PER_TENANT * 3)  # stored first: the oldest rows
        await _post_statuses(client, quiet, 3)
        async with session_factory()() as s:
            batch = await drain.claim(s)
            taken = Counter(str(event.tenant_id) for event, _ in batch)
            await s.rollback()  # a look only: the claim is undone and the worker applies them below
    finally:
        worker.resume()
    assert taken == Counter({flooder.id: drain.PER_TENANT, quiet.id: 3})
    await settle(emulator)
    events = await _events(flooder.id) + await _events(quiet.id)
    assert len(events) == drain.PER_TENANT * 3 + 3
    assert all(e.processed_at is not None and e.orphan for e in events)  # unknown SIDs: kept as orphans


async def test_a_poison_event_fails_alone_and_its_batch_is_applied(client, emulator, gateway, worker):
    tenant = await wired_tenant(client, emulator, gateway)
    worker.pause()
    try:
        async with session_factory()() as s:
            # Stored by an older version in a shape this one cannot apply: its batch fails on it.
            await ingest.store(s, uuid.UUID(tenant.id), "status", "poison", {"form": "not a form"})
            await s.commit()
        await _post_statuses(client, tenant, 5)
    finally:
        worker.resume()
    deadline = time.monotonic() + 30
    while True:
        events = await _events(tenant.id)
        poison = next(e for e in events if e.dedupe_key == "poison")
        async with session_factory()() as s:
            row = (
                await s.execute(
                    select(OutboxItem).where(OutboxItem.kind == ingest.PROCESS, OutboxItem.ref_id == poison.id)
                )
            ).scalar_one()
        good = [e for e in events if e is not poison]
        if row.tries >= 1 and all(e.processed_at is not None for e in good):
            break
        assert time.monotonic() < deadline, "the batch's good events were not applied"
        await asyncio.sleep(0.1)
    assert len(good) == 5 and all(e.orphan for e in good)
    assert poison.processed_at is None and row.state == "pending"
    assert row.last_error and row.last_error.startswith("ValueError")
    async with session_factory()() as s:  # let the suite's settle() see a quiet outbox
        item = (await s.execute(select(OutboxItem).where(OutboxItem.id == row.id))).scalar_one()
        item.state = "dead"
        await s.commit()


async def test_one_nudge_drains_a_backlog_larger_than_a_batch(client, emulator, gateway, worker):
    tenant = await wired_tenant(client, emulator, gateway)
    worker.pause()
    try:
        await _post_statuses(client, tenant, drain.PER_TENANT * 3 + 1)
        sender.drain()
        get_broker().flush_all()  # every nudge the callbacks sent is gone: one is sent below
        PendingJob(drain_events.bound(), (), None).send()
        sender.drain()
    finally:
        worker.resume()
    deadline = time.monotonic() + 20  # well inside the sweep's 30 s: the drain nudged itself on
    while not all(e.processed_at is not None for e in await _events(tenant.id)):
        assert time.monotonic() < deadline, "the backlog was left waiting after the first batch"
        await asyncio.sleep(0.1)
