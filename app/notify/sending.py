"""Sending one attempt: pace, record `sending`, call the provider, record what came back.

`sending` is committed before the provider is called, so a worker killed mid-call leaves a row
the sweeper can see (see docs/delivery-guarantees.md).
"""

from __future__ import annotations

import math
import random
import time
from contextlib import contextmanager
from typing import Any, Iterator

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import providers
from app.core.config import get_settings
from app.core.db import utcnow
from app.core.logging import get_logger
from app.core.ratelimit import limiter
from app.metrics import registry as metrics
from app.notify import pipeline
from app.notify.models import Attempt, Notification
from app.outbox import service as outbox
from channels.base import ChannelError, EmailMessage, FailureClass, SendResult, WhatsAppMessage
from tenants.credentials import service as credentials
from tenants.routing.service import get_policy
from tenants.templates.rendering import content_variables, render_email

log = get_logger("notifygw.sending")
MAX_TRIES = 6
# About ten minutes in all: 10 s, 30 s, 60 s, 2 min, 6 min (before jitter).
BACKOFF_SECONDS = (10, 30, 60, 120, 360)
SENDABLE = {"pending", "retry_wait"}


@contextmanager
def _timed(provider: str, operation: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        metrics.PROVIDER_CALLS.labels(provider, operation).observe(time.perf_counter() - started)


def backoff_ms(tries: int, retry_after: float | None) -> int:
    base = BACKOFF_SECONDS[min(tries - 1, len(BACKOFF_SECONDS) - 1)]
    delay = max(base, retry_after or 0) * random.uniform(0.8, 1.2)  # jitter spreads a burst of retries
    return int(delay * 1000)


def status_callback_url(n: Notification, attempt: Attempt) -> str:
    return f"{get_settings().public_base_url}/webhooks/twilio/status?n={n.id}&a={attempt.id}"


async def _pace(session: AsyncSession, n: Notification, attempt: Attempt, kind: str) -> bool:
    """True to send now; False after rescheduling (a worker never sleeps waiting for a token)."""
    policy = await get_policy(session, n.tenant_id)
    try:
        rate = policy.whatsapp.sender_rate_per_second
        # 100 ms of burst: with burst 1, two worker threads sending for one sender within 1/rate of each
        # other would reschedule a send that is within the rate (a quarter of sends at 1,000/s).
        allowed, wait = await limiter().acquire(f"wa:{n.tenant_id}:{attempt.sender}", rate,
                                                burst=max(1, math.ceil(rate / 10)))
    except Exception:  # limiter unavailable (Redis down): retry shortly rather than send unpaced
        allowed, wait = False, 1.0
    if allowed:
        return True
    metrics.RATE_LIMIT_WAITS.labels("whatsapp_sender").inc()
    await outbox.enqueue(session, n.tenant_id, kind, attempt.id, delay_ms=max(50, int(wait * 1000)))
    return False


async def _mark_sending(session: AsyncSession, attempt: Attempt) -> None:
    attempt.status = "sending"
    attempt.tries += 1
    attempt.sending_started_at = utcnow()
    await session.commit()


async def send_whatsapp(session: AsyncSession, n: Notification, attempt: Attempt) -> None:
    if attempt.status not in SENDABLE:
        return
    if not await _pace(session, n, attempt, pipeline.SEND_WHATSAPP):
        return
    row = await credentials.find_twilio(session, n.tenant_id)
    if row is None:
        await pipeline.whatsapp_failed(session, n, attempt, FailureClass.BAD_CREDENTIALS, None, "Twilio credentials were removed")
        return
    message = await _whatsapp_message(session, n, attempt)
    await _mark_sending(session, attempt)
    try:
        with _timed("twilio", "send"):
            result = await _simulate(attempt) if attempt.provider == "simulated" else \
                await providers.twilio().send(credentials.twilio_secrets(row), message)
    except ChannelError as exc:
        metrics.PROVIDER_ERRORS.labels("twilio", exc.failure.value).inc()
        await _on_failure(session, n, attempt, exc, pipeline.SEND_WHATSAPP)
        return
    except ValueError as exc:  # a message we built wrong is a bug, but it must not loop forever
        await pipeline.lock(session, n, attempt)
        await pipeline.whatsapp_failed(session, n, attempt, FailureClass.PERMANENT, None, str(exc))
        return
    await pipeline.lock(session, n, attempt)  # a status callback may have got here first
    _accepted(n, attempt, result)


async def _whatsapp_message(session: AsyncSession, n: Notification, attempt: Attempt) -> WhatsAppMessage:
    _, content = await pipeline.template_content(session, n)
    address, _ = await pipeline.whatsapp_address(session, n)
    via_service = attempt.sender and attempt.sender.startswith("MG")
    common: dict[str, Any] = {
        "to": address or "",
        "from_": None if via_service else attempt.sender,
        "messaging_service_sid": attempt.sender if via_service else None,
        "status_callback": status_callback_url(n, attempt),
    }
    if attempt.kind == "template":
        wa = content["whatsapp"]
        return WhatsAppMessage(kind="template", content_sid=wa["content_sid"],
                               content_variables=content_variables(wa, n.variables), **common)
    if attempt.kind == "media":
        return WhatsAppMessage(kind="media", media_url=n.media_url, body=n.text, **common)
    return WhatsAppMessage(kind="session", body=n.text, **common)


def _accepted(n: Notification, attempt: Attempt, result: SendResult) -> None:
    # A callback may have linked the SID already (worker killed after Twilio answered): keep the furthest status.
    attempt.provider_message_id = attempt.provider_message_id or result.provider_message_id
    if attempt.status == "sending":
        attempt.status = result.status or "queued"
    attempt.error_class = attempt.error_code = attempt.error_message = None
    pipeline.sync_status(n, attempt)


async def _on_failure(session: AsyncSession, n: Notification, attempt: Attempt, exc: ChannelError, kind: str) -> None:
    await pipeline.lock(session, n, attempt)
    log.info("provider refused", attempt_id=str(attempt.id), failure=exc.failure.value, code=exc.code)
    attempt.error_class, attempt.error_code, attempt.error_message = exc.failure.value, exc.code, exc.message[:2000]
    if exc.failure.retryable and attempt.tries < MAX_TRIES:
        attempt.status = "retry_wait"
        pipeline.decide(session, n, "retry", exc.failure.value, f"try {attempt.tries} of {MAX_TRIES}")
        await outbox.enqueue(session, n.tenant_id, kind, attempt.id, delay_ms=backoff_ms(attempt.tries, exc.retry_after))
        return
    failure = FailureClass.PERMANENT if exc.failure.retryable else exc.failure
    if kind == pipeline.SEND_EMAIL:
        attempt.status = "failed"
        pipeline.decide(session, n, "outcome", exc.failure.value, f"email: {exc.message}")
        pipeline.set_status(n, "failed")
        return
    await pipeline.whatsapp_failed(session, n, attempt, failure, exc.code, exc.message)


async def send_email(session: AsyncSession, n: Notification, attempt: Attempt) -> None:
    if attempt.status not in SENDABLE:
        return
    row = await credentials.find_sendgrid(session, n.tenant_id)
    if row is None and attempt.provider != "simulated":
        attempt.status, attempt.error_class = "failed", "no_email_credentials"
        pipeline.decide(session, n, "email", "no_credentials", "no SendGrid credentials configured")
        pipeline.set_status(n, "failed")
        return
    message = await _email_message(session, n, attempt)
    if message is None:
        attempt.status, attempt.error_class = "failed", "no_email_content"
        pipeline.decide(session, n, "email", "no_content", "the template has no email content for this locale")
        pipeline.set_status(n, "failed")
        return
    await _mark_sending(session, attempt)
    try:
        with _timed("sendgrid", "send"):
            result = await _simulate(attempt) if attempt.provider == "simulated" else \
                await providers.sendgrid().send(credentials.sendgrid_secrets(row), message)
    except ChannelError as exc:
        metrics.PROVIDER_ERRORS.labels("sendgrid", exc.failure.value).inc()
        await _on_failure(session, n, attempt, exc, pipeline.SEND_EMAIL)
        return
    await pipeline.lock(session, n, attempt)
    _accepted(n, attempt, result)


async def _email_message(session: AsyncSession, n: Notification, attempt: Attempt) -> EmailMessage | None:
    from tenants.contacts import service as contacts

    to = n.recipient.get("email") or contacts.current(await contacts.identifiers(session, n.tenant_id, n.contact_id), "email")
    if not to:
        return None
    custom_args = {"notifygw_notification_id": str(n.id), "notifygw_attempt_id": str(attempt.id)}
    _, content = await pipeline.template_content(session, n)
    email = content.get("email")
    if email and email.get("sendgrid_template_id"):
        return EmailMessage(to=to, template_id=email["sendgrid_template_id"], dynamic_template_data=dict(n.variables),
                            custom_args=custom_args)
    if email:
        rendered = render_email(email, n.variables)
        return EmailMessage(to=to, subject=rendered["subject"], text=rendered["text"], html=rendered["html"], custom_args=custom_args)
    if n.text:
        return EmailMessage(to=to, subject=n.text.splitlines()[0][:78], text=n.text, custom_args=custom_args)
    return None


async def _simulate(attempt: Attempt) -> SendResult:
    """Test-mode keys: the whole pipeline runs, no provider is called."""
    return SendResult(provider_message_id=f"SIM{attempt.id.hex}", status="delivered", raw={"simulated": True})
