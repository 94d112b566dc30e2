"""The gateway as a real server, a real Dramatiq worker on Redis, and tenants wired to the emulator.

End-to-end tests use these: the emulator calls the gateway back over HTTP with signed callbacks,
exactly as Twilio and SendGrid would.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import pytest
from sqlalchemy import func, select

from app.core.db import session_factory, utcnow
from app.core.queue import get_broker
from app.outbox.models import OutboxItem
from tests.factories import OPERATOR, bearer
from tests.support.providers import Emulator, UvicornThread

# Retries back off by seconds to minutes in production; the logic under test is the same at 50 ms.
FAST_BACKOFF = (0.05, 0.05, 0.05, 0.05, 0.05)


@pytest.fixture(scope="session")
def gateway(app: Any) -> Iterator[str]:
    from tests.conftest import GATEWAY_SOCKET, GATEWAY_URL

    server = UvicornThread(app, GATEWAY_SOCKET)
    server.start()
    yield GATEWAY_URL
    server.stop()


RUNNING: list[dramatiq.Worker] = []  # the table cleaner pauses these while it truncates


@pytest.fixture(scope="session")
def worker(app: Any, redis_client: Any) -> Iterator[dramatiq.Worker]:
    from app.notify import sending

    sending.BACKOFF_SECONDS = FAST_BACKOFF
    broker = get_broker()
    broker.flush_all()
    w = dramatiq.Worker(broker, worker_threads=4, worker_timeout=50)
    w.start()
    RUNNING.append(w)
    yield w
    RUNNING.remove(w)
    w.stop()


async def outbox_due() -> int:
    async with session_factory()() as s:
        return (
            await s.execute(
                select(func.count())
                .select_from(OutboxItem)
                .where(OutboxItem.state == "pending", OutboxItem.available_at <= utcnow())
            )
        ).scalar_one()


async def settle(emulator: Emulator, timeout: float = 30.0) -> None:
    """Wait until the queues, the worker, the emulator's callbacks and the due outbox are all quiet."""
    broker, deadline = get_broker(), time.monotonic() + timeout
    quiet = 0
    while quiet < 2:  # twice in a row: a callback may be in flight between two looks
        if time.monotonic() > deadline:
            raise AssertionError("the pipeline did not settle")
        busy = emulator.state.pending or await outbox_due()
        # A message's body stays in "<queue>.msgs" from enqueue until its ack: queued, delayed or running.
        for queue in {*broker.get_declared_queues(), *broker.delay_queues}:
            busy = busy or broker.client.hlen(f"{broker.namespace}:{queue}.msgs")
        quiet = 0 if busy else quiet + 1
        await asyncio.sleep(0.05)


@dataclass
class WiredTenant:
    id: str
    admin: dict[str, str]
    sender: dict[str, str]
    account: dict[str, Any]
    sendgrid: dict[str, Any]
    content_sid: str
    extra: dict[str, Any] = field(default_factory=dict)


TEMPLATE_KEY = "order_shipped"


async def wired_tenant(
    client: Any,
    emulator: Emulator,
    gateway: str,
    *,
    opt_in_required: bool = False,
    messaging_service: bool = False,
    rate: float = 1000.0,
    tier: int | str | None = None,
) -> WiredTenant:
    """A tenant with Twilio and SendGrid credentials on the emulator, a template, and a routing policy.
    `tier`: its senders' messaging-limit tier (docs/tiers.md); None keeps the product's default."""
    r = await client.post("/operator/v1/tenants", json={"name": f"E2E {secrets.token_hex(3)}"}, headers=OPERATOR)
    tenant_id = r.json()["id"]
    key = await client.post(
        f"/operator/v1/tenants/{tenant_id}/api-keys",
        headers=OPERATOR,
        json={"name": "e2e", "scopes": ["admin", "notifications:send", "notifications:read"]},
    )
    headers = bearer(key.json()["key"])
    account = emulator.create_account(inbound_url=f"{gateway}/webhooks/twilio/inbound")
    twilio = {
        "account_sid": account["account_sid"],
        "auth_token": account["auth_token"],
        "api_key_sid": account["api_key_sid"],
        "api_key_secret": account["api_key_secret"],
        "whatsapp_from": account["whatsapp_from"],
    }
    if messaging_service:
        twilio["messaging_service_sid"] = account["messaging_service_sid"]
    r = await client.put("/v1/providers/twilio", json=twilio, headers=headers)
    assert r.status_code == 200, r.text
    sg = emulator.create_sendgrid_key(event_webhook_url=f"{gateway}/webhooks/sendgrid/{tenant_id}")
    r = await client.put(
        "/v1/providers/sendgrid",
        headers=headers,
        json={
            "api_key": sg["api_key"],
            "from_email": "notify@example.com",
            "from_name": "Example",
            "event_webhook_public_key": sg["event_webhook_public_key"],
        },
    )
    assert r.status_code == 200, r.text
    content_sid = emulator.create_template(account["account_sid"], variables=("1", "2"))
    template = {
        "key": TEMPLATE_KEY,
        "default_locale": "en",
        "locales": {
            "en": {
                "whatsapp": {"content_sid": content_sid, "variables": ["name", "order"]},
                "email": {
                    "subject": "Order {{order}} shipped",
                    "text": "Hi {{name}}, order {{order}} is on its way.",
                    "html": "<p>Hi {{name}}</p>",
                },
            }
        },
    }
    assert (await client.post("/v1/templates", json=template, headers=headers)).status_code == 201
    policy: dict[str, Any] = {
        "require_whatsapp_opt_in": opt_in_required,
        "whatsapp": {"sender_rate_per_second": rate},
    }
    if tier is not None:
        policy["whatsapp"]["limits"] = {"default_tier": tier}
    assert (await client.put("/v1/routing", json=policy, headers=headers)).status_code == 200
    return WiredTenant(tenant_id, headers, headers, account, sg, content_sid)


async def notify(client: Any, tenant: WiredTenant, **body: Any) -> str:
    body.setdefault("to", {"phone": "+14155550123", "email": "ava@example.com"})
    if "text" not in body and "template" not in body:
        body["template"] = TEMPLATE_KEY
        body.setdefault("variables", {"name": "Ava", "order": "18473"})
    r = await client.post("/v1/notifications", json=body, headers=tenant.sender)
    assert r.status_code == 202, r.text
    return r.json()["id"]


async def read(client: Any, tenant: WiredTenant, notification_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/notifications/{notification_id}", headers=tenant.sender)
    assert r.status_code == 200, r.text
    return r.json()
