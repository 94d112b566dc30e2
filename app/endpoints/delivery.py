"""Delivering one webhook: claim it, sign it, POST it, record the attempt, then succeed, retry or give up.

The database holds all the state: the delivery row has its status, attempt count and next attempt
time, and a retry is its outbox row rescheduled (a delayed Dramatiq message; if Redis loses it, the
sweeper sends it again). The HTTP call is made outside any transaction and any row lock: a claim
commits a short lease in `next_attempt_at` first, so a duplicate job (the sweeper's, a worker
restart's) finds the delivery taken and leaves it alone, and a worker killed mid-call leaves a
lease that simply expires.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.crypto import DecryptionError
from app.core.db import utcnow
from app.core.logging import get_logger
from app.endpoints import urls
from app.endpoints.events import DELIVER
from app.endpoints.service import secret_of
from app.outbox import service as outbox
from app.webhooks.models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint
from channels.signatures import sign_standard_webhook
from tenants.audit import service as audit
from tenants.audit.service import SystemActor

log = get_logger("notifygw.endpoints")

# The wait after the 1st, 2nd, ... failed attempt; after the last one the delivery has failed
# (7 attempts over about 17.5 hours). A module constant so tests can shrink it.
RETRY_SCHEDULE_SECONDS: tuple[float, ...] = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600)
# An endpoint whose deliveries have failed without a single success for this long is disabled.
DISABLE_AFTER = timedelta(days=3)
TIMEOUT_SECONDS = 15.0
# Longer than the guard's DNS timeout plus the request timeout, so a live attempt never loses its claim.
LEASE = timedelta(seconds=60)
# A job may run a little before the time its row names (clocks of different hosts); not more.
EARLY_TOLERANCE = timedelta(seconds=2)
USER_AGENT = "notifygw-webhooks/1"
FAILURES = SystemActor("webhook_failures")


@dataclass(frozen=True)
class Outcome:
    status: int | None  # the HTTP status, or None when no response came back
    error: str | None  # why there was no response (or why we did not call)
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def retry_delay_ms(attempt_count: int) -> int | None:
    """Milliseconds until the next attempt after `attempt_count` attempts, or None: give up."""
    if attempt_count > len(RETRY_SCHEDULE_SECONDS):
        return None
    # ±10% jitter: after an outage, an endpoint's backlog comes back spread out, not as one burst.
    return int(RETRY_SCHEDULE_SECONDS[attempt_count - 1] * random.uniform(0.9, 1.1) * 1000)


async def deliver(session: AsyncSession, delivery_id: uuid.UUID) -> None:
    claimed = await _claim(session, delivery_id)
    if claimed is None:
        return
    delivery, endpoint = claimed
    # Commit the claim before calling out: the lease must be visible to other workers, and no
    # transaction (or row lock) may stay open for as long as a tenant's server takes to answer.
    await session.commit()
    try:
        secret = secret_of(endpoint)
    except DecryptionError:  # an encryption key was removed too early: an operator problem, kept visible
        outcome = Outcome(None, "the endpoint's secret cannot be decrypted with the configured keys", 0)
    else:
        outcome = await post(endpoint.url, str(delivery.id), delivery.payload, secret)
    log.info(
        "webhook attempt",
        delivery_id=str(delivery.id),
        endpoint_id=str(endpoint.id),
        status=outcome.status,
        error=outcome.error,
        duration_ms=outcome.duration_ms,
    )
    await _record(session, delivery_id, outcome)


async def _locked(session: AsyncSession, delivery_id: uuid.UUID) -> Any:
    stmt = (
        select(WebhookDelivery, WebhookEndpoint)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id == delivery_id)
        .execution_options(populate_existing=True)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=WebhookDelivery)
    return (await session.execute(stmt)).one_or_none()


async def _claim(session: AsyncSession, delivery_id: uuid.UUID) -> tuple[WebhookDelivery, WebhookEndpoint] | None:
    row = await _locked(session, delivery_id)
    if row is None:  # the endpoint was deleted, and its deliveries with it
        await outbox.complete(session, DELIVER, delivery_id)
        return None
    delivery, endpoint = row
    now = utcnow()
    if delivery.status != "pending":  # a duplicate job for a finished delivery
        await outbox.complete(session, DELIVER, delivery_id)
        return None
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + EARLY_TOLERANCE:
        return None  # leased by a live attempt, or rescheduled since this job was sent: that one comes back
    if endpoint.status != "enabled":  # disabled endpoints get nothing; the tenant can resend after re-enabling
        delivery.status, delivery.next_attempt_at = "failed", None
        await outbox.complete(session, DELIVER, delivery_id)
        return None
    delivery.attempt_count += 1
    delivery.next_attempt_at = now + LEASE
    return delivery, endpoint


async def post(url: str, msg_id: str, payload: dict[str, Any], secret: str) -> Outcome:
    """One signed POST (Standard Webhooks), to the address the SSRF guard vetted just now."""
    started = time.monotonic()

    def outcome(status: int | None = None, error: str | None = None) -> Outcome:
        return Outcome(status, error, int((time.monotonic() - started) * 1000))

    try:
        target = await urls.vet(url)  # again: the DNS answer may have changed since the URL was saved
    except urls.RefusedUrl as exc:
        return outcome(error=f"refused: {exc}")
    body = msgspec.json.encode(payload)
    timestamp = int(time.time())  # per attempt; the id stays the same across retries
    request_url, pin_headers, extensions = urls.pinned_request(target)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard_webhook(secret, msg_id, timestamp, body),
        **pin_headers,
    }
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False) as client:
            # httpx times each read separately; this bounds the whole exchange. The body of the
            # answer is never read: only the status matters, and a huge body must cost nothing.
            async with asyncio.timeout(TIMEOUT_SECONDS):
                async with client.stream(
                    "POST", request_url, content=body, headers=headers, extensions=extensions
                ) as response:
                    status = response.status_code
    except (httpx.TimeoutException, TimeoutError):
        return outcome(error=f"no response within {TIMEOUT_SECONDS:g}s")
    except httpx.HTTPError as exc:
        return outcome(error=f"request failed ({type(exc).__name__})")
    return outcome(status)


async def _record(session: AsyncSession, delivery_id: uuid.UUID, outcome: Outcome) -> None:
    row = await _locked(session, delivery_id)
    if row is None:  # deleted while we were calling
        await outbox.complete(session, DELIVER, delivery_id)
        return
    delivery, endpoint = row
    session.add(
        WebhookDeliveryAttempt(
            tenant_id=delivery.tenant_id,
            delivery_id=delivery.id,
            response_status=outcome.status,
            error=outcome.error[:500] if outcome.error else None,
            duration_ms=outcome.duration_ms,
        )
    )
    if delivery.status != "pending":  # another attempt (an expired lease) already settled it
        return
    now = utcnow()
    if outcome.ok:
        delivery.status, delivery.next_attempt_at = "succeeded", None
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.failing_since.is_not(None))
            .values(failing_since=None)
            .execution_options(synchronize_session=False)
        )
        await outbox.complete(session, DELIVER, delivery.id)
        return
    disabled = await _note_failure(session, endpoint, now)
    delay_ms = None if disabled or endpoint.status != "enabled" else retry_delay_ms(delivery.attempt_count)
    if delay_ms is None:
        delivery.status, delivery.next_attempt_at = "failed", None
        await outbox.complete(session, DELIVER, delivery.id)
        return
    delivery.next_attempt_at = now + timedelta(milliseconds=delay_ms)
    await outbox.enqueue(session, delivery.tenant_id, DELIVER, delivery.id, delay_ms=delay_ms)


async def _note_failure(session: AsyncSession, endpoint: WebhookEndpoint, now: datetime) -> bool:
    """Start the endpoint's failing clock if it is not running; disable it once it has run too long.

    Both are single conditional UPDATEs, so concurrent failures to one endpoint neither lose the
    first failure time nor disable (and audit) it twice. True when this call disabled it.
    """
    await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.failing_since.is_(None))
        .values(failing_since=now)
        .execution_options(synchronize_session=False)
    )
    disabled = await session.execute(
        update(WebhookEndpoint)
        .where(
            WebhookEndpoint.id == endpoint.id,
            WebhookEndpoint.status == "enabled",
            WebhookEndpoint.failing_since <= now - DISABLE_AFTER,
        )
        .values(status="disabled")
        .execution_options(synchronize_session=False)
    )
    if not disabled.rowcount:  # type: ignore[attr-defined]  # an UPDATE's CursorResult
        return False
    since = endpoint.failing_since or now
    audit.record(
        session,
        tenant_id=endpoint.tenant_id,
        actor=FAILURES,
        action="webhook_endpoint.disabled",
        target_type="webhook_endpoint",
        target_id=endpoint.id,
        before={"status": "enabled", "failing_since": since.isoformat()},
        after={"status": "disabled", "reason": f"every delivery has failed since {since.isoformat()}"},
    )
    log.warning("webhook endpoint disabled", endpoint_id=str(endpoint.id), failing_since=since.isoformat())
    return True
