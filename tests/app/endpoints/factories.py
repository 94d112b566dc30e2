"""Builders for webhook-endpoint tests, and the isolation-matrix factories for tests/tenants/test_isolation.py.

Nothing built here is ever delivered: the endpoint URL is a public address (it must pass the SSRF
guard), so the delivery is written directly, with no outbox job, rather than emitted.
"""

from __future__ import annotations

import uuid
from typing import Any

from app.core.db import session_factory
from app.webhooks.models import WebhookDelivery

PUBLIC_URL = "https://93.184.215.14/hooks/notifygw"
ALL_EVENTS = ["notification.updated", "message.received", "contact.opted_out", "contact.opted_in"]
ENDPOINTS = "/v1/webhook-endpoints"


async def create_endpoint(
    client: Any, headers: dict[str, str], url: str = PUBLIC_URL, events: list[str] | None = None
) -> dict[str, Any]:
    r = await client.post(ENDPOINTS, json={"url": url, "events": events or ALL_EVENTS}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def stored_delivery(tenant_id: str, endpoint_id: str, status: str = "failed") -> str:
    async with session_factory()() as s:
        d = WebhookDelivery(
            id=uuid.uuid4(),
            tenant_id=uuid.UUID(tenant_id),
            endpoint_id=uuid.UUID(endpoint_id),
            event_type="message.received",
            status=status,
            attempt_count=1,
            payload={"type": "message.received", "timestamp": "2026-01-01T00:00:00.000Z", "data": {}},
        )
        s.add(d)
        await s.commit()
        return str(d.id)


# --- for tests/tenants/test_isolation.py -------------------------------------------------------------


async def isolation_endpoint(client: Any, tenant_id: str, headers: dict[str, str]) -> dict[str, str]:
    return {"endpoint_id": (await create_endpoint(client, headers))["id"]}


async def isolation_delivery(client: Any, tenant_id: str, headers: dict[str, str]) -> dict[str, str]:
    # Names its own endpoint too, so the path's endpoint_id and delivery_id belong together.
    params = await isolation_endpoint(client, tenant_id, headers)
    return {**params, "delivery_id": await stored_delivery(tenant_id, params["endpoint_id"])}


ISOLATION_FACTORIES = {"endpoint_id": isolation_endpoint, "delivery_id": isolation_delivery}
ISOLATION_BODIES = {("PATCH", "/v1/webhook-endpoints/{endpoint_id:uuid}"): {"status": "enabled"}}
