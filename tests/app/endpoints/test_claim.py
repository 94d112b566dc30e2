"""The claim rules of one delivery job, called directly (no worker): who may send, and when not to."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from app.core.db import session_factory, utcnow
from app.endpoints import delivery
from app.endpoints.events import DELIVER
from app.outbox.models import OutboxItem
from app.webhooks.models import WebhookDelivery, WebhookDeliveryAttempt
from tests.app.endpoints.factories import ENDPOINTS, create_endpoint, stored_delivery
from tests.factories import tenant_with_key


async def run_job(delivery_id: str) -> None:
    """What the actor does, in a session that commits at the end as the actor's does."""
    async with session_factory()() as s:
        await delivery.deliver(s, uuid.UUID(delivery_id))
        await s.commit()


async def state(delivery_id: str) -> tuple[WebhookDelivery, list[WebhookDeliveryAttempt]]:
    async with session_factory()() as s:
        d = await s.get(WebhookDelivery, uuid.UUID(delivery_id))
        attempts = (
            (await s.execute(select(WebhookDeliveryAttempt).where(WebhookDeliveryAttempt.delivery_id == d.id)))
            .scalars()
            .all()
        )
        return d, list(attempts)


async def add_outbox_row(tenant_id: str, delivery_id: str) -> None:
    async with session_factory()() as s:
        s.add(OutboxItem(tenant_id=uuid.UUID(tenant_id), kind=DELIVER, ref_id=uuid.UUID(delivery_id)))
        await s.commit()


async def outbox_state(delivery_id: str) -> str:
    async with session_factory()() as s:
        return (
            await s.execute(select(OutboxItem.state).where(OutboxItem.ref_id == uuid.UUID(delivery_id)))
        ).scalar_one()


async def test_a_pending_delivery_of_a_disabled_endpoint_fails_without_a_request(client, sink):
    tenant, admin = await tenant_with_key(client, ["admin"])
    endpoint = await create_endpoint(client, admin, url=sink.url("/hooks"))
    delivery_id = await stored_delivery(tenant["id"], endpoint["id"], status="pending")
    await add_outbox_row(tenant["id"], delivery_id)
    assert (
        await client.patch(f"{ENDPOINTS}/{endpoint['id']}", json={"status": "disabled"}, headers=admin)
    ).status_code == 200
    await run_job(delivery_id)
    d, attempts = await state(delivery_id)
    assert d.status == "failed" and attempts == [] and sink.received() == []
    assert await outbox_state(delivery_id) == "done"


async def test_a_claimed_or_rescheduled_delivery_is_left_alone(client, sink):
    tenant, admin = await tenant_with_key(client, ["admin"])
    endpoint = await create_endpoint(client, admin, url=sink.url("/hooks"))
    delivery_id = await stored_delivery(tenant["id"], endpoint["id"], status="pending")
    await add_outbox_row(tenant["id"], delivery_id)
    later = utcnow() + timedelta(seconds=30)  # another worker's lease, or a retry not yet due
    async with session_factory()() as s:
        await s.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == uuid.UUID(delivery_id)).values(next_attempt_at=later)
        )
        await s.commit()
    await run_job(delivery_id)
    d, _attempts = await state(delivery_id)
    assert d.status == "pending" and d.attempt_count == 1 and d.next_attempt_at == later  # untouched and attempts == []
    assert sink.received() == [] and await outbox_state(delivery_id) == "pending"  # its own job comes back


async def test_a_duplicate_job_for_a_finished_delivery_sends_nothing(client, sink):
    tenant, admin = await tenant_with_key(client, ["admin"])
    endpoint = await create_endpoint(client, admin, url=sink.url("/hooks"))
    delivery_id = await stored_delivery(tenant["id"], endpoint["id"], status="succeeded")
    await add_outbox_row(tenant["id"], delivery_id)
    await run_job(delivery_id)
    assert sink.received() == [] and await outbox_state(delivery_id) == "done"


async def test_a_job_for_a_deleted_endpoint_finishes_quietly(client, sink):
    tenant, admin = await tenant_with_key(client, ["admin"])
    endpoint = await create_endpoint(client, admin, url=sink.url("/hooks"))
    delivery_id = await stored_delivery(tenant["id"], endpoint["id"], status="pending")
    await add_outbox_row(tenant["id"], delivery_id)
    assert (await client.delete(f"{ENDPOINTS}/{endpoint['id']}", headers=admin)).status_code == 204
    async with session_factory()() as s:
        assert await s.get(WebhookDelivery, uuid.UUID(delivery_id)) is None  # cascaded
    await run_job(delivery_id)
    assert sink.received() == [] and await outbox_state(delivery_id) == "done"


async def test_a_due_delivery_is_sent_once_and_settled(client, sink):
    tenant, admin = await tenant_with_key(client, ["admin"])
    endpoint = await create_endpoint(client, admin, url=sink.url("/hooks"))
    delivery_id = await stored_delivery(tenant["id"], endpoint["id"], status="pending")
    await add_outbox_row(tenant["id"], delivery_id)
    await run_job(delivery_id)
    await run_job(delivery_id)  # the same job again (a sweeper re-send): nothing more happens
    d, attempts = await state(delivery_id)
    assert d.status == "succeeded" and d.attempt_count == 2 and [a.response_status for a in attempts] == [200]
    assert len(sink.received()) == 1 and await outbox_state(delivery_id) == "done"
