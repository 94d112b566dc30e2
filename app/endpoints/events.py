"""Emitting events to tenant apps: one delivery row (and one outbox job) per subscribed endpoint.

`emit` runs inside the caller's unit of work, so a delivery exists exactly when the change it
describes was committed, and its job is sent only after that commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utcnow
from app.core.ttlcache import TTLCache
from app.endpoints.repository import EndpointRepository
from app.outbox import service as outbox
from app.webhooks.models import WebhookDelivery, WebhookEndpoint

DELIVER = "webhook.deliver"  # the outbox kind; app/endpoints/tasks.py registers its actor
EVENT_TYPES = (
    "notification.updated",
    "message.received",
    "contact.opted_out",
    "contact.opted_in",
    "whatsapp.sender_capped",  # a 63018 lowered a sender's messaging-limit tier (app/notify/tiers.py)
)

# Tenants seen without an enabled endpoint; only that is cached, so a deleted endpoint is never used.
_without_endpoints: TTLCache[bool] = TTLCache()


def endpoints_changed(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    _without_endpoints.invalidate_on_commit(session, tenant_id)


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def emit(session: AsyncSession, tenant_id: uuid.UUID, event_type: str, data: dict[str, Any]) -> int:
    """Queue `event_type` for every enabled endpoint of the tenant that subscribed to it; how many.

    Most tenants have no endpoint: that is remembered for a few seconds (TTLCache), so a status
    change costs no query for them; adding or enabling an endpoint clears it. `data` may hold UUIDs and
    datetimes; they are stored as strings, as the receiver will see them.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    if _without_endpoints.get(tenant_id):
        return 0
    repo = EndpointRepository(session, tenant_id)
    endpoints = await repo.all(repo.statement().where(WebhookEndpoint.status == "enabled"))
    if not endpoints:
        _without_endpoints.put(tenant_id, True)
    # The subscription list is filtered here rather than in SQL: a tenant has a handful of
    # endpoints, and this keeps the query portable between PostgreSQL (JSONB) and SQLite (JSON).
    subscribed = [e for e in endpoints if event_type in e.events]
    if not subscribed:
        return 0
    now = utcnow()
    payload = {"type": event_type, "timestamp": _iso(now), "data": msgspec.to_builtins(data)}
    for endpoint in subscribed:
        delivery = WebhookDelivery(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            endpoint_id=endpoint.id,
            event_type=event_type,
            payload=payload,
            status="pending",
            attempt_count=0,
            next_attempt_at=now,
        )
        session.add(delivery)
        await outbox.enqueue(session, tenant_id, DELIVER, delivery.id)
    return len(subscribed)


# --- the `data` of each event type, in one place (docs/outbound-webhooks.md shows them) ------------
# Rows are read by attribute only, so this module does not depend on the notify or webhooks models.


def notification_data(n: Any) -> dict[str, Any]:
    """notification.updated, from an app.notify Notification: its state as GET /v1/notifications/{id} shows it."""
    return {
        "id": n.id,
        "status": n.status,
        "channel": n.channel,
        "template": n.template_key,
        "metadata": dict(n.metadata_ or {}),
        "created_at": n.created_at,
    }


def message_data(m: Any) -> dict[str, Any]:
    """message.received, from an app.webhooks InboundMessage (not STOP/START keywords: those are consent events)."""
    return {
        "id": m.id,
        "message_sid": m.message_sid,
        "contact_id": m.contact_id,
        "from": m.from_address,
        "to": m.to_address,
        "body": m.body,
        "media": list(m.media or []),
        "profile_name": m.profile_name,
        "wa_id": m.wa_id,
        "button_payload": m.button_payload,
        "received_at": m.received_at,
    }


def consent_data(
    *, contact_id: uuid.UUID | None, channel: str, address: str | None, source: str, evidence: str | None = None
) -> dict[str, Any]:
    """contact.opted_out / contact.opted_in: who, on which channel, and what caused it (e.g. the STOP MessageSid)."""
    return {"contact_id": contact_id, "channel": channel, "address": address, "source": source, "evidence": evidence}
