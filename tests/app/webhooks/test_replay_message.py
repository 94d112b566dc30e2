"""`notifygw replay --message-sid` and POST /operator/v1/replays: one message's stored callbacks are
applied again, the processing that was lost included; nothing else is touched and nothing is resent."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
import uuid

from sqlalchemy import func, select

from app.core import queue
from app.core.db import session_factory
from app.core.queue import get_broker
from app.notify.models import ProviderEvent
from app.webhooks.cli import replay_events
from app.webhooks.models import RawEvent
from tests.app.webhooks.test_twilio_webhooks import post_signed, status_form
from tests.factories import OPERATOR
from tests.support.gateway import notify, read, settle, wired_tenant


async def events_of(sid: str) -> list[RawEvent]:
    async with session_factory()() as s:
        events = (await s.execute(select(RawEvent))).scalars().all()
    return [e for e in events if dict(map(tuple, e.payload["form"])).get("MessageSid") == sid]


async def until_processed(sid: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while any(e.processed_at is None for e in await events_of(sid)):
        if time.monotonic() > deadline:
            raise AssertionError(f"the replayed events of {sid} were never processed")
        await asyncio.sleep(0.1)


async def test_replay_applies_one_messages_lost_callbacks_and_only_those(client, emulator, gateway, worker):
    t = await wired_tenant(client, emulator, gateway)
    lost, other = "SM" + secrets.token_hex(16), "SM" + secrets.token_hex(16)
    worker.pause()
    try:
        for sid, status in ((lost, "sent"), (lost, "delivered"), (other, "delivered")):
            pairs = status_form(t.account["account_sid"], sid, status)
            assert (
                await post_signed(client, "/webhooks/twilio/status", pairs, t.account["auth_token"])
            ).status_code == 204
        # Their jobs are gone: stored, never processed. The API sends jobs from a background thread, so
        # wait until it has sent these before the flush, or one sent after it would still run.
        assert await asyncio.to_thread(queue.sender.drain)
        get_broker().flush_all()
    finally:
        worker.resume()

    r = await client.post("/operator/v1/replays", json={"message_sid": lost}, headers=OPERATOR)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message_sid"] == lost and body["replayed"] == 2
    assert {uuid.UUID(i) for i in body["event_ids"]} == {e.id for e in await events_of(lost)}
    await until_processed(lost)
    assert all(e.processed_at is None for e in await events_of(other))  # not named, not replayed

    # Again: already applied, so nothing new is recorded.
    async with session_factory()() as s:
        recorded = (await s.execute(select(func.count()).select_from(ProviderEvent))).scalar_one()
    assert (await client.post("/operator/v1/replays", json={"message_sid": lost}, headers=OPERATOR)).json()[
        "replayed"
    ] == 2
    await until_processed(lost)
    async with session_factory()() as s:
        assert (await s.execute(select(func.count()).select_from(ProviderEvent))).scalar_one() == recorded


async def test_replaying_a_delivered_message_changes_nothing_and_sends_nothing(client, emulator, gateway, worker):
    t = await wired_tenant(client, emulator, gateway)
    nid = await notify(client, t)
    await settle(emulator)
    before = await read(client, t, nid)
    sid = before["attempts"][0]["provider_message_id"]
    sent_before = len(emulator.messages(account_sid=t.account["account_sid"]))
    count = await replay_events(None, uuid.UUID(t.id), None, message_sid=sid)
    assert count == len(await events_of(sid)) >= 3  # queued, sent, delivered, read echoes
    await settle(emulator)
    after = await read(client, t, nid)
    assert after["status"] == before["status"] and len(after["events"]) == len(before["events"])
    assert len(emulator.messages(account_sid=t.account["account_sid"])) == sent_before


async def test_replay_requests_are_checked(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    unknown = "SM" + "0" * 32
    r = await client.post("/operator/v1/replays", json={"message_sid": unknown}, headers=OPERATOR)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    r = await client.post("/operator/v1/replays", json={"message_sid": "SM123"}, headers=OPERATOR)
    assert r.status_code in (400, 422) and r.headers["content-type"].startswith("application/problem+json")
    r = await client.post("/operator/v1/replays", json={"message_sid": unknown, "extra": 1}, headers=OPERATOR)
    assert r.status_code in (400, 422)
    r = await client.post("/operator/v1/replays", json={"message_sid": unknown}, headers=t.admin)
    assert r.status_code in (401, 403)  # a tenant's key is no operator's


async def test_replay_narrowed_to_another_tenant_finds_nothing(client, emulator, gateway, worker):
    a = await wired_tenant(client, emulator, gateway)
    b = await wired_tenant(client, emulator, gateway)
    nid = await notify(client, a)
    await settle(emulator)
    sid = (await read(client, a, nid))["attempts"][0]["provider_message_id"]
    r = await client.post("/operator/v1/replays", json={"message_sid": sid, "tenant_id": b.id}, headers=OPERATOR)
    assert r.status_code == 404
    r = await client.post("/operator/v1/replays", json={"message_sid": sid, "tenant_id": a.id}, headers=OPERATOR)
    assert r.status_code == 200 and r.json()["replayed"] >= 3


def test_the_command_refuses_a_bad_sid_and_a_missing_target():
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", "replay", *args],
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    bad = run("--message-sid", "SMnope")
    assert bad.returncode == 2 and "MessageSid" in bad.stderr
    neither = run()
    assert neither.returncode == 2 and "--since" in neither.stderr
