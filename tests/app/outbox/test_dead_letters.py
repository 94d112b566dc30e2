"""Every job has a bounded number of tries, then stops as a dead letter in the database: listed for
the operator (API and CLI), counted in /metrics, shown on the notification, and retried on demand.
Dramatiq's own dead-letter queue in Redis keeps nothing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from sqlalchemy import select, text

from app.core.db import session_factory
from app.core.queue import get_broker
from app.outbox import service as outbox
from app.outbox.failures import describe, scrub
from app.outbox.models import OutboxItem
from app.webhooks.ingest import PROCESS
from app.webhooks.models import InboundMessage, RawEvent
from tests.factories import OPERATOR, make_tenant

PHONE_DIGITS = "14155550123"


async def until_state(kind: str, ref: uuid.UUID, state: str, timeout: float = 60.0) -> OutboxItem:
    deadline = time.monotonic() + timeout
    while True:
        async with session_factory()() as s:
            item = (
                await s.execute(select(OutboxItem).where(OutboxItem.kind == kind, OutboxItem.ref_id == ref))
            ).scalar_one()
        if item.state == state:
            return item
        if time.monotonic() > deadline:
            raise AssertionError(f"{kind} {ref} is {item.state} after {item.tries} tries, never {state}")
        await asyncio.sleep(0.1)


async def stored_event(tenant_id: str, payload: dict) -> uuid.UUID:
    """A stored callback this version cannot process (an older shape): its job raises on every run."""
    async with session_factory()() as s:
        event = RawEvent(tenant_id=uuid.UUID(tenant_id), kind="inbound", dedupe_key=uuid.uuid4().hex, payload=payload)
        s.add(event)
        await s.flush()
        await outbox.enqueue(s, event.tenant_id, PROCESS, event.id)
        await s.commit()
        return event.id


def redis_values(redis_client, namespace: str) -> list[bytes]:
    values: list[bytes] = []
    for key in redis_client.scan_iter(match=f"{namespace}*", count=1000):
        kind = redis_client.type(key)
        if kind == b"hash":
            values.extend(redis_client.hvals(key))
        elif kind == b"zset":
            values.extend(redis_client.zrange(key, 0, -1))
    return values


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], env=os.environ.copy(), capture_output=True, text=True, timeout=60
    )


async def test_a_job_that_fails_every_time_is_dead_after_the_bound_and_can_be_retried(
    client, worker, redis_client, monkeypatch
):
    from tests.conftest import TEST_DB_NAME

    monkeypatch.setattr(outbox, "MAX_TRIES", 3)
    tenant, other = await make_tenant(client), await make_tenant(client)
    event_id = await stored_event(tenant["id"], {"form": [["MessageSid", int(PHONE_DIGITS)], ["Body", "hi"]]})

    dead = await until_state(PROCESS, event_id, "dead")
    assert dead.tries == 3 and dead.dead_at is not None
    assert dead.last_error.startswith("TypeError") and PHONE_DIGITS not in dead.last_error
    # Nothing of it in Redis: no message waits, and Dramatiq's dead-letter queue holds no copy or traceback.
    await asyncio.sleep(0.2)
    assert not [v for v in redis_values(redis_client, TEST_DB_NAME) if b"TypeError" in v or PHONE_DIGITS.encode() in v]
    assert not list(redis_client.scan_iter(match=f"{TEST_DB_NAME}*.XQ*"))

    listed = (await client.get("/operator/v1/dead-letters", headers=OPERATOR)).json()["items"]
    assert [(i["id"], i["kind"], i["ref_id"], i["tries"]) for i in listed] == [
        (str(dead.id), PROCESS, str(event_id), 3)
    ]
    assert (await client.get("/operator/v1/dead-letters", params={"kind": "webhook.deliver"}, headers=OPERATOR)).json()[
        "items"
    ] == []
    assert (await client.get("/operator/v1/dead-letters", params={"tenant_id": other["id"]}, headers=OPERATOR)).json()[
        "items"
    ] == []
    assert (await client.get("/operator/v1/dead-letters")).status_code == 401
    metrics = (await client.get("/metrics", headers=OPERATOR)).text
    assert f'notifygw_outbox_dead{{kind="{PROCESS}"}} 1.0' in metrics
    assert f'notifygw_dead_letters_total{{kind="{PROCESS}"}}' in metrics

    # The CLI twin lists it and retries it; the job fails again and is dead again after a fresh count.
    shown = cli("dead-letters", "list", "--kind", PROCESS)
    assert shown.returncode == 0, shown.stderr
    assert [i["id"] for i in json.loads(shown.stdout)] == [str(dead.id)]
    retried = cli("dead-letters", "retry", str(dead.id))
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["state"] == "pending"
    again = await until_state(PROCESS, event_id, "dead")
    assert again.tries == 3 and again.dead_at > dead.dead_at

    # Once what made it fail is fixed, a retry through the API runs it to the end.
    async with session_factory()() as s:
        await s.execute(
            text("UPDATE raw_events SET payload = :p, processed_at = NULL WHERE id = :id"),
            {"p": json.dumps({"form": [["MessageSid", "SM" + "7" * 32], ["Body", "hi"]]}), "id": event_id},
        )
        await s.commit()
    r = await client.post(f"/operator/v1/dead-letters/{dead.id}/retry", headers=OPERATOR)
    assert r.status_code == 200 and r.json()["state"] == "pending" and r.json()["tries"] == 0
    await until_state(PROCESS, event_id, "done")
    async with session_factory()() as s:
        assert (await s.execute(select(InboundMessage.body))).scalars().all() == ["hi"]
    conflict = await client.post(f"/operator/v1/dead-letters/{dead.id}/retry", headers=OPERATOR)
    assert conflict.status_code == 409 and conflict.headers["content-type"].startswith("application/problem+json")
    assert (await client.post(f"/operator/v1/dead-letters/{uuid.uuid4()}/retry", headers=OPERATOR)).status_code == 404
    assert cli("dead-letters", "retry", str(uuid.uuid4())).returncode != 0


async def test_sweeps_of_a_job_that_never_finishes_count_too(client, worker, monkeypatch):
    """A job lost or cut off on every run (killed, timed out) is resent by the sweeper a bounded number of times."""
    from datetime import timedelta

    monkeypatch.setattr(outbox, "SWEEP_AFTER", timedelta(0))
    monkeypatch.setattr(outbox, "MAX_TRIES", 3)
    tenant = await make_tenant(client)
    worker.pause()  # every message is lost: none runs
    try:
        event_id = await stored_event(tenant["id"], {"form": [["MessageSid", "SM" + "8" * 32]]})
        for _ in range(5):
            async with session_factory()() as s:
                await outbox.sweep(s)
        item = await until_state(PROCESS, event_id, "dead", timeout=1)
    finally:
        get_broker().flush_all()
        worker.resume()
    assert item.tries == 3 and item.last_error.startswith("never finished")


async def test_errors_are_stored_without_the_values_they_quote(session):
    """A real driver error with a phone number among its parameters: the statement and values are dropped."""
    with pytest.raises(Exception) as info:
        await session.execute(
            text(
                "INSERT INTO inbound_messages (id, tenant_id, message_sid, from_address, media, "
                "received_at, created_at) VALUES (:id, :t, :sid, :f, '[]', now(), now())"
            ),
            {"id": uuid.uuid4(), "t": uuid.uuid4(), "sid": "S" * 500, "f": f"whatsapp:+{PHONE_DIGITS}"},
        )
    stored = describe(info.value)
    assert stored.startswith("DBAPIError") and "value too long" in stored, stored
    assert PHONE_DIGITS not in stored and "INSERT" not in stored and "SSSS" not in stored
    assert (
        scrub("no contact for 'ava@example.com' or \"+1 415 555 0123\" (ava@example.com, +14155550123)")
        == "no contact for '…' or \"…\" (…@…, …)"
    )
