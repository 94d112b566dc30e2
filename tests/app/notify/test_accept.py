"""POST /v1/notifications: validation, persistence with its outbox item, idempotency."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from app.core.db import session_factory
from app.notify.models import Notification
from app.outbox.models import OutboxItem
from tests.factories import bearer, make_key, tenant_with_key
from tests.tenants.test_templates_routing import ORDER_SHIPPED

GOOD = {
    "to": {"phone": "+14155550123", "email": "ava@example.com", "locale": "pt-BR"},
    "template": "order_shipped",
    "variables": {"name": "Ava", "order": "18473", "carrier": "UPS"},
    "metadata": {"order_id": "18473"},
}


async def _tenant(client):
    tenant, admin = await tenant_with_key(client, ["admin"])
    assert (await client.post("/v1/templates", json=ORDER_SHIPPED, headers=admin)).status_code == 201
    sender = bearer(await make_key(client, tenant["id"], ["notifications:send", "notifications:read"]))
    return tenant, admin, sender


async def test_accepts_and_records_outbox_in_one_transaction(client):
    _, _, sender = await _tenant(client)
    r = await client.post("/v1/notifications", json=GOOD, headers=sender)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "accepted" and set(body) == {"id", "status", "created_at"}
    async with session_factory()() as s:
        n = await s.get(Notification, __import__("uuid").UUID(body["id"]))
        assert n is not None and n.recipient == {"phone": "+14155550123", "email": "ava@example.com", "locale": "pt-BR"}
        item = (await s.execute(select(OutboxItem).where(OutboxItem.ref_id == n.id))).scalar_one()
        assert item.kind == "notification.route"  # written with the notification (a worker may have done it since)
    got = (await client.get(f"/v1/notifications/{body['id']}", headers=sender)).json()
    assert got["metadata"] == {"order_id": "18473"} and got["template"] == "order_shipped"


async def test_validation_errors_point_at_fields(client):
    _, _, sender = await _tenant(client)
    cases = {
        "/to": {**GOOD, "to": {"locale": "en"}},
        "/template": {k: v for k, v in GOOD.items() if k != "template"},
        "/to/phone": {**GOOD, "to": {"phone": "+1 555"}},
        "/to/email": {**GOOD, "to": {"email": "not-an-email"}},
        "/metadata": {**GOOD, "metadata": {"blob": "x" * 5000}},
        "/variables/carrier": {**GOOD, "variables": {"name": "Ava", "order": "1"}},
        "/channels/0": {**GOOD, "channels": ["sms"]},
        "/to/whatsapp_user_id": {**GOOD, "to": {"whatsapp_user_id": "not a bsuid"}},
        "/extra": {**GOOD, "extra": 1},
    }
    for pointer, body in cases.items():
        r = await client.post("/v1/notifications", json=body, headers=sender)
        assert r.status_code == 422, (pointer, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert pointer in [e["pointer"] for e in r.json()["errors"]], (pointer, r.json())
    r = await client.post("/v1/notifications", json={**GOOD, "template": "nope"}, headers=sender)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/template"
    async with session_factory()() as s:
        assert (await s.execute(select(Notification))).scalars().all() == []


async def test_scopes(client):
    tenant, admin, _ = await _tenant(client)
    reader = bearer(await make_key(client, tenant["id"], ["notifications:read"]))
    assert (await client.post("/v1/notifications", json=GOOD, headers=reader)).status_code == 403
    assert (await client.post("/v1/notifications", json=GOOD, headers=admin)).status_code == 403


async def test_idempotency_replays_and_rejects(client):
    _, _, sender = await _tenant(client)
    h = {**sender, "Idempotency-Key": "order-18473"}
    first = await client.post("/v1/notifications", json=GOOD, headers=h)
    again = await client.post("/v1/notifications", json=dict(reversed(list(GOOD.items()))), headers=h)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    other = await client.post("/v1/notifications", json={**GOOD, "metadata": {}}, headers=h)
    assert other.status_code == 422
    for bad in ("x" * 256, "bad\x01key"):
        r = await client.post("/v1/notifications", json=GOOD, headers={**sender, "Idempotency-Key": bad})
        assert r.status_code == 400, bad
    async with session_factory()() as s:
        assert len((await s.execute(select(Notification))).scalars().all()) == 1


async def test_concurrent_same_key_makes_one_notification(client):
    _, _, sender = await _tenant(client)
    h = {**sender, "Idempotency-Key": "race-1"}
    responses = await asyncio.gather(*(client.post("/v1/notifications", json=GOOD, headers=h) for _ in range(20)))
    codes = sorted(r.status_code for r in responses)
    assert set(codes) <= {202, 409}, codes
    ids = {r.json()["id"] for r in responses if r.status_code == 202}
    assert len(ids) == 1
    async with session_factory()() as s:
        assert len((await s.execute(select(Notification))).scalars().all()) == 1


async def test_other_tenant_cannot_read(client):
    _, _, sender_a = await _tenant(client)
    _, _, sender_b = await _tenant(client)
    nid = (await client.post("/v1/notifications", json=GOOD, headers=sender_a)).json()["id"]
    r = await client.get(f"/v1/notifications/{nid}", headers=sender_b)
    assert r.status_code == 404 and nid not in r.json()["detail"]
    assert (await client.get("/v1/notifications", headers=sender_b)).json()["items"] == []


async def test_an_accept_with_a_new_key_for_a_new_person_is_four_statements(client):
    """With the key, policy and template cached: the Idempotency-Key record (written complete, response
    included), the identifier lookup, the person with their identifiers, and the notification with its
    outbox row. It used to take eight: a DELETE of expired records, the claim and its UPDATE, and one
    INSERT per row."""
    import threading

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    _, _, sender = await _tenant(client)
    warm = {**GOOD, "to": {"phone": "+14155550999"}}
    assert (await client.post("/v1/notifications", json=warm, headers=sender)).status_code == 202
    seen: list[tuple[int, str]] = []

    def record(conn, cursor, statement, *args):
        seen.append((threading.get_ident(), " ".join(statement.split()[:3])))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        h = {**sender, "Idempotency-Key": "four-statements"}
        r = await client.post("/v1/notifications", json=GOOD, headers=h)
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert r.status_code == 202, r.text
    # The request's own thread (a worker routing an earlier notification runs in threads of its own).
    (request_thread,) = {t for t, s in seen if s.startswith("INSERT INTO idempotency_keys")}
    mine = [s for t, s in seen if t == request_thread]
    assert len(mine) == 4, mine
    assert mine[0].startswith("INSERT INTO idempotency_keys") and mine[1].startswith("SELECT")
    assert all(s.startswith("WITH created") for s in mine[2:]), mine
    again = await client.post("/v1/notifications", json=GOOD, headers=h)
    assert again.headers["idempotent-replayed"] == "true" and again.json() == r.json()


async def test_an_expired_idempotency_record_is_taken_over(client):
    """Past KEEP_FOR the key is free again: a new request with it (even another body) is a new notification."""
    from datetime import timedelta

    from sqlalchemy import update

    from app.core.db import utcnow
    from app.notify.models import IdempotencyRecord

    _, _, sender = await _tenant(client)
    h = {**sender, "Idempotency-Key": "old-order"}
    first = await client.post("/v1/notifications", json=GOOD, headers=h)
    assert first.status_code == 202
    async with session_factory()() as s:
        await s.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "old-order")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await s.commit()
    other = await client.post("/v1/notifications", json={**GOOD, "metadata": {}}, headers=h)
    assert other.status_code == 202 and "idempotent-replayed" not in other.headers, other.text
    assert other.json()["id"] != first.json()["id"]
    replay = await client.post("/v1/notifications", json={**GOOD, "metadata": {}}, headers=h)
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == other.json()
