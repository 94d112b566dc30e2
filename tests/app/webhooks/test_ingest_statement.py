"""The callback path's one statement (app/webhooks/ingest.py, through outbox.enqueue_new) stores what the two-statement path stores:
the raw event, and an outbox row equal to the one outbox.enqueue writes, in one autocommitted round trip."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from app.core.db import session_factory
from app.outbox import service as outbox
from app.outbox.models import OutboxItem
from app.webhooks.ingest import PROCESS, store
from app.webhooks.models import RawEvent
from tenants.accounts.models import Tenant

# What differs between two rows of the same kind of work by nature, not by the path that wrote them.
PER_ROW = {"id", "ref_id", "available_at", "created_at", "updated_at", "enqueued_at"}


async def _tenant() -> uuid.UUID:
    async with session_factory()() as s:
        tenant = Tenant(name="t", slug=f"t-{uuid.uuid4().hex[:8]}")
        s.add(tenant)
        await s.commit()
        return tenant.id


def _columns(item: OutboxItem) -> dict[str, Any]:
    return {c.key: getattr(item, c.key) for c in OutboxItem.__table__.columns if c.key not in PER_ROW}


async def test_the_one_statement_writes_the_event_and_the_same_outbox_row_as_enqueue(app: Any) -> None:
    from tests.support.gateway import RUNNING

    for running in RUNNING:  # a worker left by earlier tests would apply the events and change the rows
        running.pause()
    try:
        await _compare_the_two_paths()
    finally:
        for running in RUNNING:
            running.resume()


async def _compare_the_two_paths() -> None:
    tenant_id = await _tenant()
    payload = {"form": [["MessageSid", "SM" + "1" * 32], ["Body", "héllo"]], "query": []}
    async with session_factory()() as s:
        assert not s.in_transaction()  # the path under test: nothing read before the write
        assert await store(s, tenant_id, "status", "dedupe-1", payload) is True
        await s.commit()
    async with session_factory()() as s:  # the Core path, for comparison
        event = RawEvent(tenant_id=tenant_id, kind="status", dedupe_key="dedupe-2", payload=payload)
        s.add(event)
        await s.flush()
        await outbox.enqueue(s, tenant_id, PROCESS, event.id)
        await s.commit()
    async with session_factory()() as s:
        events = {e.dedupe_key: e for e in (await s.execute(select(RawEvent))).scalars()}
        items = {i.ref_id: i for i in (await s.execute(select(OutboxItem))).scalars()}
    assert set(events) == {"dedupe-1", "dedupe-2"}
    one, core = events["dedupe-1"], events["dedupe-2"]
    assert one.payload == payload and one.orphan is False and one.tenant_id == tenant_id
    assert one.received_at == one.created_at
    assert _columns(items[one.id]) == _columns(items[core.id])
    assert items[one.id].available_at == one.received_at


async def test_a_duplicate_stores_nothing_and_queues_nothing(app: Any) -> None:
    tenant_id = await _tenant()
    payload = {"form": [["MessageSid", "SM" + "2" * 32]], "query": []}
    for expected in (True, False):
        async with session_factory()() as s:
            assert await store(s, tenant_id, "status", "same-key", payload) is expected
            await s.commit()
    async with session_factory()() as s:
        assert len((await s.execute(select(RawEvent))).scalars().all()) == 1
        assert len((await s.execute(select(OutboxItem))).scalars().all()) == 1


async def test_inside_an_open_transaction_the_write_rolls_back_with_it(app: Any) -> None:
    tenant_id = await _tenant()
    async with session_factory()() as s:
        await s.execute(select(Tenant.id).where(Tenant.id == tenant_id))  # a read first: a transaction is open
        assert await store(s, tenant_id, "status", "rolled-back", {"form": [], "query": []}) is True
        await s.rollback()
    async with session_factory()() as s:
        assert (await s.execute(select(RawEvent))).scalars().all() == []
        assert (await s.execute(select(OutboxItem))).scalars().all() == []
