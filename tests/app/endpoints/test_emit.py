"""emit(): one delivery and one outbox job per enabled, subscribed endpoint; one query when there are none."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import event, func, select, text

from app.core.db import get_engine, session_factory
from app.core.uow import unit_of
from app.endpoints import events
from app.outbox.models import OutboxItem
from app.webhooks.models import WebhookDelivery
from tests.app.endpoints.factories import ENDPOINTS, create_endpoint
from tests.factories import tenant_with_key


async def emit(tenant_id: str, event_type: str, data: dict) -> int:
    async with session_factory()() as s:
        count = await events.emit(s, uuid.UUID(tenant_id), event_type, data)
        # Rolled back: rows are checked before commit, and no job is ever sent to the public test URL.
        rows = (await s.execute(select(WebhookDelivery).order_by(WebhookDelivery.endpoint_id))).scalars().all()
        jobs = (await s.execute(select(OutboxItem).where(OutboxItem.kind == events.DELIVER))).scalars().all()
        pending = list(unit_of(s).jobs)
        s.expunge_all()  # keep the rows readable after the rollback
        await s.rollback()
    emit.rows, emit.jobs, emit.pending = rows, jobs, pending  # type: ignore[attr-defined]
    return count


async def test_one_delivery_per_enabled_subscribed_endpoint(client):
    tenant, admin = await tenant_with_key(client, ["admin"])
    everything = await create_endpoint(client, admin)
    inbound_only = await create_endpoint(client, admin, events=["message.received"])
    disabled = await create_endpoint(client, admin, events=["contact.opted_out"])
    r = await client.patch(f"{ENDPOINTS}/{disabled['id']}", json={"status": "disabled"}, headers=admin)
    assert r.status_code == 200
    other_tenant, other_admin = await tenant_with_key(client, ["admin"])
    await create_endpoint(client, other_admin)

    assert await emit(tenant["id"], "message.received", {"id": uuid.UUID(int=7), "body": "hi"}) == 2
    assert {str(d.endpoint_id) for d in emit.rows} == {everything["id"], inbound_only["id"]}
    assert {j.ref_id for j in emit.jobs} == {d.id for d in emit.rows}
    assert all(j.state == "pending" and str(j.tenant_id) == tenant["id"] for j in emit.jobs)
    # ids only, after commit (one job per outbox row; neither list has an order to compare)
    assert sorted(job.args for job in emit.pending) == sorted((str(j.ref_id),) for j in emit.jobs)
    for d in emit.rows:
        assert d.status == "pending" and d.attempt_count == 0 and d.event_type == "message.received"
        assert d.payload["type"] == "message.received" and d.payload["data"] == {
            "id": str(uuid.UUID(int=7)),
            "body": "hi",
        }
        stamp = datetime.fromisoformat(d.payload["timestamp"].replace("Z", "+00:00"))
        assert stamp.tzinfo is not None and abs((datetime.now(UTC) - stamp).total_seconds()) < 60

    assert await emit(tenant["id"], "contact.opted_out", {}) == 1  # the disabled endpoint gets nothing
    assert [str(d.endpoint_id) for d in emit.rows] == [everything["id"]]
    assert await emit(tenant["id"], "notification.updated", {}) == 1
    assert await emit(other_tenant["id"], "contact.opted_in", {}) == 1


async def test_nothing_for_unsubscribed_events(client):
    tenant, admin = await tenant_with_key(client, ["admin"])
    await create_endpoint(client, admin, events=["message.received"])
    for event_type in ("notification.updated", "contact.opted_out", "contact.opted_in"):
        assert await emit(tenant["id"], event_type, {"x": 1}) == 0
        assert emit.rows == [] and emit.jobs == [] and emit.pending == []


async def test_a_tenant_without_endpoints_costs_one_indexed_query(client):
    tenant, _ = await tenant_with_key(client, ["admin"])
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    engine = get_engine().sync_engine
    async with session_factory()() as s:
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert await events.emit(s, uuid.UUID(tenant["id"]), "notification.updated", {"id": "n"}) == 0
        finally:
            event.remove(engine, "before_cursor_execute", count)
        await s.rollback()
    (query,) = [q for q in statements if q.strip().upper() not in ("BEGIN", "COMMIT", "ROLLBACK")]
    assert "FROM webhook_endpoints" in query and "webhook_endpoints.tenant_id = " in query
    async with session_factory()() as s:  # the index the migration made, not just the model's
        indexes = (
            await s.execute(text("SELECT indexdef FROM pg_indexes WHERE tablename = 'webhook_endpoints'"))
        ).scalars()
        assert any(d.endswith("(tenant_id)") for d in indexes)
        assert (await s.execute(select(func.count()).select_from(WebhookDelivery))).scalar_one() == 0


async def test_unknown_event_types_are_a_programming_error(session):
    with pytest.raises(ValueError, match=r"message\.sent"):
        await events.emit(session, uuid.uuid4(), "message.sent", {})


def test_event_types_match_the_api_schema():
    from typing import get_args

    from app.endpoints.schemas import EventType

    assert set(get_args(EventType)) == set(events.EVENT_TYPES)


def test_data_builders_give_the_documented_shapes():
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    n = SimpleNamespace(
        id=uuid.UUID(int=1),
        status="delivered",
        channel="whatsapp",
        template_key="order_shipped",
        metadata_={"order": "18473"},
        created_at=at,
    )
    assert events.notification_data(n) == {
        "id": n.id,
        "status": "delivered",
        "channel": "whatsapp",
        "template": "order_shipped",
        "metadata": {"order": "18473"},
        "created_at": at,
    }
    m = SimpleNamespace(
        id=uuid.UUID(int=2),
        message_sid="SM1",
        contact_id=None,
        from_address="whatsapp:+14155550123",
        to_address="whatsapp:+14155550100",
        body="hi",
        media=[],
        profile_name="Ava",
        wa_id="14155550123",
        button_payload=None,
        received_at=at,
    )
    assert set(events.message_data(m)) == {
        "id",
        "message_sid",
        "contact_id",
        "from",
        "to",
        "body",
        "media",
        "profile_name",
        "wa_id",
        "button_payload",
        "received_at",
    }
    assert events.consent_data(
        contact_id=None, channel="whatsapp", address="+14155550123", source="inbound_keyword", evidence="SM1"
    ) == {
        "contact_id": None,
        "channel": "whatsapp",
        "address": "+14155550123",
        "source": "inbound_keyword",
        "evidence": "SM1",
    }
