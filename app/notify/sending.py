"""Sending one attempt, on any channel: pace, record `sending`, call the provider, record what came back.

One path (`send`) over the Channel protocol (channels/base.py); what differs per channel (its
credentials, its message, what a definite failure leads to) is one small class each. Test-mode
attempts (provider `simulated`) go through channels/simulated.py and reach no provider.

`sending` is committed before the provider is called, so a worker killed mid-call leaves a row
the sweeper can see (see docs/delivery-guarantees.md).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import providers
from app.core.config import get_settings
from app.core.db import utcnow
from app.core.logging import get_logger
from app.core.ratelimit import limiter
from app.metrics import registry as metrics
from app.notify import ambiguity, lookups, pipeline, sensitive, tiers
from app.notify.models import Attempt, Notification
from app.notify.status import MAX_TRIES
from app.outbox import service as outbox
from app.usage import service as usage
from channels.base import Channel, ChannelError, EmailMessage, FailureClass, SendResult, WhatsAppMessage
from channels.simulated import SimulatedChannel
from tenants.credentials import service as credentials
from tenants.routing.service import get_policy
from tenants.templates import approvals
from tenants.templates.rendering import RenderFailed, content_variables, render_email

log = get_logger("notifygw.sending")
# About ten minutes in all: 10 s, 30 s, 60 s, 2 min, 6 min (before jitter).
BACKOFF_SECONDS = (10, 30, 60, 120, 360)
SENDABLE = {"pending", "retry_wait"}
# How long a copy may wait in Twilio's queue before Twilio drops it unsent (ValidityPeriod, 1-36000 s,
# Twilio's default 36000). An hour covers a sender's queue at its 80 MPS for a large burst, and bounds
# how late a copy whose send was ambiguous can still reach the person.
VALIDITY_PERIOD_SECONDS = 3600


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
        allowed, wait = await limiter().acquire(
            f"wa:{n.tenant_id}:{attempt.sender}", rate, burst=max(1, math.ceil(rate / 10))
        )
    except Exception as exc:
        from redis.exceptions import ConnectionError as Unreachable
        from redis.exceptions import TimeoutError as NoAnswer

        # Only an unreachable limiter is waited out (it comes back with Redis). One that answers with an
        # error (a refused command) will refuse again: fail the job, so its bounded tries apply, never
        # "retry in 1 s" forever.
        if not isinstance(exc, (Unreachable, NoAnswer, OSError)):
            raise
        allowed, wait = False, 1.0  # retry shortly rather than send unpaced
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


class _WhatsApp:
    """WhatsApp through the tenant's Twilio account: paced per sender; an ambiguous answer is checked
    for at Twilio before any resend; a definite failure goes through step 6 (the fallback)."""

    kind = pipeline.SEND_WHATSAPP
    provider = "twilio"
    paced = True
    checks_ambiguity = True

    async def channel(
        self, session: AsyncSession, n: Notification, attempt: Attempt, started: pipeline.Started | None
    ) -> Channel[Any] | None:
        row = started.twilio if started else await credentials.find_twilio(session, n.tenant_id)
        if row is None:
            await self.failed(
                session, n, attempt, FailureClass.BAD_CREDENTIALS, None, "Twilio credentials were removed"
            )
            return None
        if attempt.provider == "simulated":
            return SimulatedChannel()
        return providers.twilio().channel(credentials.twilio_secrets(row))

    async def message(
        self, session: AsyncSession, n: Notification, attempt: Attempt, started: pipeline.Started | None
    ) -> WhatsAppMessage | None:
        _, content = await pipeline.template_content(session, n)
        address = started.address if started else (await pipeline.whatsapp_address(session, n))[0]
        # What GET /v1/usage will count it under, fixed now (committed with `sending`).
        attempt.usage_category = usage.category_for(attempt.kind, content.get("whatsapp"))
        attempt.recipient_country = usage.country_for(address)
        via_service = attempt.sender and attempt.sender.startswith("MG")
        common: dict[str, Any] = {
            "to": address or "",
            "from_": None if via_service else attempt.sender,
            "messaging_service_sid": attempt.sender if via_service else None,
            "status_callback": status_callback_url(n, attempt),
            "validity_period": VALIDITY_PERIOD_SECONDS,
        }
        if attempt.kind == "template":
            wa = content.get("whatsapp")
            if not wa:  # the template (or its WhatsApp locale) went away since routing
                why = "the template has no WhatsApp content any more"
                await self.failed(session, n, attempt, FailureClass.TEMPLATE_INVALID, None, why)
                return None
            approval = wa.get("approval") or approvals.UNVERIFIED
            problem = approvals.unusable(wa, approval)
            if problem is not None:  # its approval went (paused, ...) since routing: never sent; the fallback follows
                await pipeline.template_withdrawn(session, n, attempt, *problem)
                return None
            try:
                values = sensitive.for_send(n)
            except sensitive.Dropped as exc:
                await self.failed(session, n, attempt, FailureClass.PERMANENT, None, str(exc))
                return None
            return WhatsAppMessage(
                kind="template",
                content_sid=wa["content_sid"],
                content_variables=content_variables(wa, values, approval.get("variables")),
                **common,
            )
        if attempt.kind == "media":
            return WhatsAppMessage(kind="media", media_url=n.media_url, body=n.text, **common)
        return WhatsAppMessage(kind="session", body=n.text, **common)

    async def failed(
        self,
        session: AsyncSession,
        n: Notification,
        attempt: Attempt,
        failure: FailureClass,
        code: str | None,
        message: str,
        more_info: str | None = None,
    ) -> None:
        # A retryable class whose tries are spent is a plain failure for the fallback's reasons.
        final = FailureClass.PERMANENT if failure.retryable else failure
        await pipeline.whatsapp_failed(session, n, attempt, final, code, message, more_info=more_info)


class _Email:
    """Email through the tenant's SendGrid account: not paced, never ambiguous, and no fallback after it."""

    kind = pipeline.SEND_EMAIL
    provider = "sendgrid"
    paced = False
    checks_ambiguity = False

    async def channel(
        self, session: AsyncSession, n: Notification, attempt: Attempt, started: pipeline.Started | None
    ) -> Channel[Any] | None:
        if attempt.provider == "simulated":
            return SimulatedChannel()
        row = await credentials.find_sendgrid(session, n.tenant_id)
        if row is None:
            _finish(session, n, attempt, "no_email_credentials", "no_credentials", "no SendGrid credentials configured")
            return None
        return providers.sendgrid().channel(credentials.sendgrid_secrets(row))

    async def message(
        self, session: AsyncSession, n: Notification, attempt: Attempt, started: pipeline.Started | None
    ) -> EmailMessage | None:
        attempt.usage_category = usage.category_for("email")
        attempt.recipient_country = usage.country_for(n.recipient.get("phone"))
        try:
            message = await _email_message(session, n, attempt)
        except RenderFailed as exc:  # a permanent failure of this template: no retry, and email has no fallback
            attempt.error_message = exc.message
            why = f"the email template cannot be rendered: {exc.message}"
            _finish(session, n, attempt, exc.error_class, exc.error_class, why)
            return None
        except sensitive.Dropped as exc:
            _finish(session, n, attempt, "sensitive_dropped", "sensitive_dropped", str(exc))
            return None
        if message is None:
            why = "the template has no email content for this locale"
            _finish(session, n, attempt, "no_email_content", "no_content", why)
        return message

    async def failed(
        self,
        session: AsyncSession,
        n: Notification,
        attempt: Attempt,
        failure: FailureClass,
        code: str | None,
        message: str,
        more_info: str | None = None,
    ) -> None:
        attempt.status = "failed"
        pipeline.decide(session, n, "outcome", failure.value, f"email: {message}")
        pipeline.set_status(n, "failed")


def _finish(session: AsyncSession, n: Notification, attempt: Attempt, error_class: str, result: str, why: str) -> None:
    """An email that cannot be built or has nowhere to go: failed before any provider call."""
    attempt.status, attempt.error_class = "failed", error_class
    pipeline.decide(session, n, "email", result, why)
    pipeline.set_status(n, "failed")


_Route = _WhatsApp | _Email
ROUTES: dict[str, _Route] = {"whatsapp": _WhatsApp(), "email": _Email()}


async def send(
    session: AsyncSession, n: Notification, attempt: Attempt, started: pipeline.Started | None = None
) -> None:
    """The one send path, for every channel (rows locked by the job): pace, find the tenant's channel,
    build its message, record `sending`, call the provider through the Channel protocol, record the answer.
    `started`: routing created the attempt in this job, and read its credentials and address."""
    route = ROUTES[attempt.channel]
    if attempt.status not in SENDABLE:
        return
    if route.paced and not await _pace(session, n, attempt, route.kind):
        return
    channel = await route.channel(session, n, attempt, started)
    if channel is None:
        return
    message = await route.message(session, n, attempt, started)
    if message is None:
        return
    if not await tiers.admit(session, n, attempt):  # at the sender's messaging limit: held, or by email
        return
    await _mark_sending(session, attempt)
    try:
        with _timed(route.provider, "send"):
            result = await channel.send(message)
    except ChannelError as exc:
        metrics.PROVIDER_ERRORS.labels(route.provider, exc.failure.value).inc()
        if exc.ambiguous and route.checks_ambiguity:
            # The provider may have it: find out before anything is sent again (app/notify/ambiguity.py).
            await pipeline.lock(session, n, attempt)
            await ambiguity.after_ambiguous_send(session, n, attempt, exc)
            return
        await _on_failure(session, n, attempt, exc, route)
        return
    except ValueError as exc:  # a message we built wrong is a bug, but it must not loop forever
        await pipeline.lock(session, n, attempt)
        await route.failed(session, n, attempt, FailureClass.PERMANENT, None, str(exc))
        return
    await pipeline.lock(session, n, attempt)  # a status callback may have got here first
    _accepted(n, attempt, result)


def _accepted(n: Notification, attempt: Attempt, result: SendResult) -> None:
    # A callback may have linked the SID already (worker killed after Twilio answered): keep the furthest status.
    attempt.provider_message_id = attempt.provider_message_id or result.provider_message_id
    attempt.provider_request_id = result.request_id or attempt.provider_request_id
    if attempt.status in ("sending", "unknown"):  # unknown: the sweep took it for lost while Twilio was slow
        attempt.status = result.status or "queued"
        # A retried try's earlier error is cleared; a callback's failure that got here first is kept.
        attempt.error_class = attempt.error_code = attempt.error_message = attempt.error_more_info = None
    pipeline.sync_status(n, attempt)


async def _on_failure(
    session: AsyncSession, n: Notification, attempt: Attempt, exc: ChannelError, route: _Route
) -> None:
    await pipeline.lock(session, n, attempt)
    log.info("provider refused", attempt_id=str(attempt.id), failure=exc.failure.value, code=exc.code)
    attempt.error_class, attempt.error_code, attempt.error_message = exc.failure.value, exc.code, exc.message[:2000]
    attempt.error_more_info = exc.more_info
    attempt.provider_request_id = exc.request_id or attempt.provider_request_id
    if exc.failure.retryable and attempt.tries < MAX_TRIES:
        attempt.status = "retry_wait"
        pipeline.decide(session, n, "retry", exc.failure.value, f"try {attempt.tries} of {MAX_TRIES}")
        await outbox.enqueue(
            session, n.tenant_id, route.kind, attempt.id, delay_ms=backoff_ms(attempt.tries, exc.retry_after)
        )
        return
    await route.failed(session, n, attempt, exc.failure, exc.code, exc.message, more_info=exc.more_info)


async def _email_message(session: AsyncSession, n: Notification, attempt: Attempt) -> EmailMessage | None:
    to = await lookups.email_of(session, n)
    if not to:
        return None
    custom_args = {"notifygw_notification_id": str(n.id), "notifygw_attempt_id": str(attempt.id)}
    _, content = await pipeline.template_content(session, n)
    email = content.get("email")
    if email and email.get("sendgrid_template_id"):
        return EmailMessage(
            to=to,
            template_id=email["sendgrid_template_id"],
            dynamic_template_data=sensitive.for_send(n),
            custom_args=custom_args,
        )
    if email:
        rendered = await render_email(email, sensitive.for_send(n))
        return EmailMessage(
            to=to, subject=rendered["subject"], text=rendered["text"], html=rendered["html"], custom_args=custom_args
        )
    if n.text:
        return EmailMessage(to=to, subject=n.text.splitlines()[0][:78], text=n.text, custom_args=custom_args)
    return None
