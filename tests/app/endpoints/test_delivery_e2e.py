"""Deliveries end to end: a real Dramatiq worker on Redis signs and POSTs to a local tenant app (the sink)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from app.core.db import session_factory, utcnow
from app.endpoints import delivery, events, urls
from app.outbox.models import OutboxItem
from app.webhooks.models import WebhookEndpoint
from channels.signatures import generate_webhook_secret, verify_standard_webhook
from tests.app.endpoints.factories import ENDPOINTS, create_endpoint
from tests.app.endpoints.support import settle
from tests.factories import tenant_with_key

pytestmark = pytest.mark.usefixtures("delivery_worker")


async def emit(tenant_id: str, event_type: str, data: dict[str, Any]) -> int:
    async with session_factory()() as s:
        count = await events.emit(s, uuid.UUID(tenant_id), event_type, data)
        await s.commit()  # the jobs go out now
    return count


async def deliveries(client, admin, endpoint_id: str) -> list[dict[str, Any]]:
    r = await client.get(f"{ENDPOINTS}/{endpoint_id}/deliveries", headers=admin)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def wait_for_attempts(client, admin, endpoint_id: str, count: int, timeout: float = 10.0) -> dict[str, Any]:
    """The endpoint's only delivery once `count` attempts are recorded (the sink sees a request before that)."""
    deadline = time.monotonic() + timeout
    while True:
        (d,) = await deliveries(client, admin, endpoint_id)
        if len(d["attempts"]) >= count:
            # Read again: the first read may have caught the commit between its two queries.
            (d,) = await deliveries(client, admin, endpoint_id)
            return d
        assert time.monotonic() < deadline, d
        await asyncio.sleep(0.02)


async def set_failing_since(endpoint_id: str, ago: timedelta) -> None:
    async with session_factory()() as s:
        await s.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == uuid.UUID(endpoint_id))
            .values(failing_since=utcnow() - ago)
        )
        await s.commit()


def independent_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks, computed from the spec rather than with our own helper."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def assert_signed(request: Any, secret: str, delivery_id: str) -> None:
    h = request.headers
    assert h["webhook-id"] == delivery_id
    assert abs(int(h["webhook-timestamp"]) - time.time()) < 60
    assert verify_standard_webhook(
        secret, h["webhook-id"], h["webhook-timestamp"], request.body, h["webhook-signature"]
    )
    assert h["webhook-signature"] == independent_signature(
        secret, h["webhook-id"], h["webhook-timestamp"], request.body
    )
    assert h["content-type"] == "application/json"


async def test_a_signed_delivery_reaches_the_tenant_app(client, sink):
    tenant, admin = await tenant_with_key(client, ["admin"])
    endpoint = await create_endpoint(client, admin, url=sink.url("/hooks?src=notifygw"))
    assert await emit(tenant["id"], "message.received", {"message_sid": "SM123", "body": "Hello"}) == 1
    (got,) = sink.wait_for(1, path="/hooks")
    await settle()

    (d,) = await deliveries(client, admin, endpoint["id"])
    assert got.method == "POST" and got.path == "/hooks?src=notifygw"
    assert_signed(got, endpoint["secret"], d["id"])
    body = got.json()
    assert body["type"] == "message.received" and body["data"] == {"message_sid": "SM123", "body": "Hello"}
    assert body == d["payload"] and set(body) == {"type", "timestamp", "data"}
    assert not verify_standard_webhook(
        generate_webhook_secret(),
        got.headers["webhook-id"],
        got.headers["webhook-timestamp"],
        got.body,
        got.headers["webhook-signature"],
    )
    assert d["status"] == "succeeded" and d["attempt_count"] == 1 and d["next_attempt_at"] is None
    (attempt,) = d["attempts"]
    assert attempt["response_status"] == 200 and attempt["error"] is None and attempt["duration_ms"] >= 0
    async with session_factory()() as s:
        (job,) = (await s.execute(select(OutboxItem).where(OutboxItem.ref_id == uuid.UUID(d["id"])))).scalars().all()
    assert job.state == "done"


async def test_a_failed_first_attempt_is_retried_with_the_same_id(client, sink, fast_retries):
    tenant, admin = await tenant_with_key(client, ["admin"])
    endpoint = await create_endpoint(client, admin, url=sink.url("/hooks"), events=["notification.updated"])
    sink.respond(status=500, body="boom", times=1)
    await emit(tenant["id"], "notification.updated", {"id": "n1", "status": "delivered"})
    first, second = sink.wait_for(2)
    await settle()

    (d,) = await deliveries(client, admin, endpoint["id"])
    for request in (first, second):
        assert_signed(request, endpoint["secret"], d["id"])  # same id; each attempt signs its own timestamp
    assert first.body == second.body
    assert d["status"] == "succeeded" and d["attempt_count"] == 2
    assert [(a["response_status"], a["error"]) for a in d["attempts"]] == [(500, None), (200, None)]
    read = (await client.get(f"{ENDPOINTS}/{endpoint['id']}", headers=admin)).json()
    assert read["status"] == "enabled" and read["failing_since"] is None  # set by the failure, cleared by the success


async def test_exhausted_retries_fail_the_delivery_and_a_resend_succeeds(client, sink, monkeypatch):
    monkeypatch.setattr(delivery, "RETRY_SCHEDULE_SECONDS", (0.05, 0.05))
    tenant, admin = await tenant_with_key(client, ["admin"])
    endpoint = await create_endpoint(client, admin, url=sink.url("/hooks"))
    sink.respond(status=503, times=3)
    await emit(tenant["id"], "contact.opted_out", {"contact_id": "c1", "channel": "whatsapp"})
    sink.wait_for(3)
    await settle()

    (d,) = await deliveries(client, admin, endpoint["id"])
    assert d["status"] == "failed" and d["attempt_count"] == 3 and d["next_attempt_at"] is None
    assert [a["response_status"] for a in d["attempts"]] == [503, 503, 503]
    failing = (await client.get(f"{ENDPOINTS}/{endpoint['id']}", headers=admin)).json()
    assert failing["status"] == "enabled" and failing["failing_since"] is not None

    r = await client.post(f"{ENDPOINTS}/{endpoint['id']}/deliveries/{d['id']}/resend", headers=admin)
    assert r.status_code == 202, r.text
    assert r.json()["id"] == d["id"] and r.json()["status"] == "pending"
    sink.wait_for(4)
    await settle()
    (d,) = await deliveries(client, admin, endpoint["id"])
    assert d["status"] == "succeeded" and [a["response_status"] for a in d["attempts"]] == [503, 503, 503, 200]
    assert_signed(sink.received()[-1], endpoint["secret"], d["id"])
    assert (await client.get(f"{ENDPOINTS}/{endpoint['id']}", headers=admin)).json()["failing_since"] is None
    audit = (await client.get("/v1/audit-log", params={"target_id": d["id"]}, headers=admin)).json()["items"]
    assert [(e["action"], e["actor_type"]) for e in audit] == [("webhook_delivery.resent", "api_key")]


async def test_an_endpoint_failing_for_three_days_is_disabled_and_audited(client, sink, fast_retries):
    tenant, admin = await tenant_with_key(client, ["admin"])
    endpoint = await create_endpoint(client, admin, url=sink.url("/hooks"))
    sink.respond(status=500)
    await set_failing_since(endpoint["id"], timedelta(days=3, minutes=1))
    await emit(tenant["id"], "message.received", {"body": "one"})
    sink.wait_for(1)
    await settle()

    read = (await client.get(f"{ENDPOINTS}/{endpoint['id']}", headers=admin)).json()
    assert read["status"] == "disabled"
    (d,) = await deliveries(client, admin, endpoint["id"])
    assert d["status"] == "failed" and [a["response_status"] for a in d["attempts"]] == [
        500
    ]  # no retries after disabling
    (entry,) = [
        e
        for e in (await client.get("/v1/audit-log", params={"target_id": endpoint["id"]}, headers=admin)).json()[
            "items"
        ]
        if e["action"] == "webhook_endpoint.disabled"
    ]
    assert entry["actor_type"] == "system" and entry["actor_id"] == "webhook_failures"
    assert entry["before"]["status"] == "enabled" and entry["after"]["status"] == "disabled"

    # Disabled endpoints get nothing new, and a resend waits for re-enabling.
    assert await emit(tenant["id"], "message.received", {"body": "two"}) == 0
    r = await client.post(f"{ENDPOINTS}/{endpoint['id']}/deliveries/{d['id']}/resend", headers=admin)
    assert r.status_code == 409, r.text
    await settle()
    assert len(sink.received()) == 1


async def test_failing_for_less_than_three_days_keeps_the_endpoint(client, sink, monkeypatch):
    monkeypatch.setattr(delivery, "RETRY_SCHEDULE_SECONDS", (1.0,))
    tenant, admin = await tenant_with_key(client, ["admin"])
    endpoint = await create_endpoint(client, admin, url=sink.url("/hooks"))
    sink.respond(status=500, times=1)
    await set_failing_since(endpoint["id"], timedelta(days=2, hours=23))
    await emit(tenant["id"], "message.received", {"body": "one"})
    sink.wait_for(1)
    d = await wait_for_attempts(client, admin, endpoint["id"], 1)  # and before the retry, 1 s later

    read = (await client.get(f"{ENDPOINTS}/{endpoint['id']}", headers=admin)).json()
    assert read["status"] == "enabled"
    assert utcnow() - datetime.fromisoformat(read["failing_since"]) > timedelta(days=2, hours=22)  # not restarted
    assert d["status"] == "pending" and d["attempt_count"] == 1
    wait = datetime.fromisoformat(d["next_attempt_at"]) - datetime.fromisoformat(d["attempts"][0]["created_at"])
    assert timedelta(seconds=0.8) < wait < timedelta(seconds=1.2)  # the schedule, with its ±10% jitter

    sink.wait_for(2)
    await settle()
    (d,) = await deliveries(client, admin, endpoint["id"])
    assert d["status"] == "succeeded"
    assert (await client.get(f"{ENDPOINTS}/{endpoint['id']}", headers=admin)).json()["failing_since"] is None


async def test_the_ssrf_guard_is_checked_again_at_delivery_time(client, sink, monkeypatch):
    monkeypatch.setattr(delivery, "RETRY_SCHEDULE_SECONDS", ())
    tenant, admin = await tenant_with_key(client, ["admin"])
    endpoint = await create_endpoint(client, admin, url=sink.url("/hooks"))
    monkeypatch.setattr(urls, "EXTRA_TRUSTED_HOSTS", set())  # as if its DNS now pointed inside our network
    await emit(tenant["id"], "message.received", {"body": "x"})
    await settle()
    (d,) = await deliveries(client, admin, endpoint["id"])
    assert d["status"] == "failed"
    (attempt,) = d["attempts"]
    assert (
        attempt["response_status"] is None
        and attempt["error"].startswith("refused: ")
        and "loopback" in attempt["error"]
    )
    assert sink.received() == []


async def test_a_slow_endpoint_times_out_and_is_retried(client, sink, fast_retries, monkeypatch):
    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 0.3)
    tenant, admin = await tenant_with_key(client, ["admin"])
    endpoint = await create_endpoint(client, admin, url=sink.url("/hooks"))
    sink.respond(delay=1.5, times=1)
    await emit(tenant["id"], "contact.opted_in", {"contact_id": "c1"})
    sink.wait_for(2)
    await settle()
    (d,) = await deliveries(client, admin, endpoint["id"])
    assert d["status"] == "succeeded"
    (slow, ok) = d["attempts"]
    assert slow["response_status"] is None and slow["error"] == "no response within 0.3s" and slow["duration_ms"] < 1400
    assert ok["response_status"] == 200


async def test_rotated_secret_signs_the_next_delivery(client, sink):
    tenant, admin = await tenant_with_key(client, ["admin"])
    endpoint = await create_endpoint(client, admin, url=sink.url("/hooks"))
    new_secret = (await client.post(f"{ENDPOINTS}/{endpoint['id']}/rotate-secret", headers=admin)).json()["secret"]
    await emit(tenant["id"], "message.received", {"body": "x"})
    (got,) = sink.wait_for(1)
    await settle()
    h = got.headers
    assert verify_standard_webhook(
        new_secret, h["webhook-id"], h["webhook-timestamp"], got.body, h["webhook-signature"]
    )
    assert not verify_standard_webhook(
        endpoint["secret"], h["webhook-id"], h["webhook-timestamp"], got.body, h["webhook-signature"]
    )


async def test_deliveries_page_newest_first(client, sink):
    tenant, admin = await tenant_with_key(client, ["admin"])
    endpoint = await create_endpoint(client, admin, url=sink.url("/hooks"))
    for i in range(3):
        await emit(tenant["id"], "message.received", {"n": i})
    sink.wait_for(3)
    await settle()
    path = f"{ENDPOINTS}/{endpoint['id']}/deliveries"
    first = (await client.get(path, params={"limit": 2}, headers=admin)).json()
    rest = (await client.get(path, params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin)).json()
    assert [d["payload"]["data"]["n"] for d in first["items"] + rest["items"]] == [2, 1, 0]
    assert rest["next_cursor"] is None and all(len(d["attempts"]) == 1 for d in first["items"] + rest["items"])
    # Deliveries run in parallel, so they may arrive in any order (docs/outbound-webhooks.md).
    assert sorted(json.loads(r.body)["data"]["n"] for r in sink.received()) == [0, 1, 2]
