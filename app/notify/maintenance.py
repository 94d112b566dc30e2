"""Periodic repair work, run by every worker process (all of it is safe to run concurrently).

- the outbox sweep re-enqueues work the queue lost;
- an attempt stuck in `sending` with no SID past the grace period (its worker may have died after
  Twilio accepted it; Twilio has no idempotency key for Messages) is the same ambiguity as a send
  that timed out: a WhatsApp one is looked for at Twilio before any resend (app/notify/ambiguity.py);
  an email one is sent again, flagged `possible_duplicate`;
- the reconciler fetches from Twilio the attempts with no terminal status after 10 minutes,
  because Twilio stops retrying a status callback after about 15 s;
- the Content sync reads each tenant's Twilio Content templates with their WhatsApp approval when it is
  due (every 15 minutes, 2 after a failure; at once for a tenant never synced), a few tenants per pass,
  each claimed first so that two workers do not both ask Twilio (tenants/templates/sync.py).
- retention (app/retention/service.py) redacts bodies and deletes metadata past each tenant's
  settings, every RETENTION_EVERY, at most RETENTION_BATCHES batches per table and tenant per pass
  so that the sweep is never held up for long; a pass that left work makes the next come sooner.
- the business-initiated conversations older than 24 h are forgotten (app/notify/tiers.py): they no
  longer count against any sender's messaging limit.
"""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import providers
from app.core.db import session_factory, utcnow
from app.core.logging import get_logger
from app.notify import ambiguity, lookups, pipeline, tiers
from app.notify.status import OPEN
from app.outbox import service as outbox
from app.retention import service as retention
from app.webhooks.status import apply_status  # the same path a status callback takes
from channels.base import ChannelError
from tenants.credentials import service as credentials
from tenants.templates import sync as template_sync

log = get_logger("notifygw.maintenance")
SENDING_GRACE = timedelta(minutes=2)
RECONCILE_AFTER = timedelta(minutes=10)
RETENTION_EVERY = 300.0  # seconds: bodies outlive their retention by at most this (plus a backlog)
RETENTION_BATCHES = 4  # per table and tenant per pass: 2,000 rows; a backlog is taken over the next passes
_next_retention = 0.0  # time.monotonic() of this process's next retention pass


async def requeue_stuck_sends(session: AsyncSession, *, limit: int = 200) -> int:
    cutoff = utcnow() - SENDING_GRACE
    stuck = await lookups.stuck_sends(session, cutoff, limit)
    moved = 0
    for attempt, n in stuck:
        # Notification first, then attempt: the order every job locks them in. Locking the attempt alone
        # and then writing a decision (whose foreign key takes a share lock on the notification) deadlocked
        # with a job holding the notification and waiting for the attempt.
        await pipeline.lock(session, n, attempt)
        if attempt.status != "sending" or attempt.provider_message_id is not None:
            continue  # another pass, a callback or the job itself got here first
        moved += 1
        if attempt.channel == "whatsapp" and attempt.provider == "twilio":
            await ambiguity.after_worker_lost(session, attempt)  # looked for at Twilio before any resend
            continue
        attempt.status, attempt.possible_duplicate = "pending", True
        kind = pipeline.SEND_WHATSAPP if attempt.channel == "whatsapp" else pipeline.SEND_EMAIL
        await outbox.enqueue(session, attempt.tenant_id, kind, attempt.id)
    await session.commit()
    return moved


async def reconcile(session: AsyncSession, *, limit: int = 100) -> int:
    """Bring stale WhatsApp attempts up to date from Twilio's record of them."""
    cutoff = utcnow() - RECONCILE_AFTER
    rows = await lookups.stale_whatsapp(session, cutoff, OPEN - {"pending", "retry_wait", "sending"}, limit)
    done = 0
    for attempt, n in rows:
        row = await credentials.find_twilio(session, n.tenant_id)
        if row is None or attempt.provider_message_id is None:  # stale_whatsapp picks only sent ones
            continue
        try:
            channel = providers.twilio().channel(credentials.twilio_secrets(row))
            result = await channel.fetch(attempt.provider_message_id)
        except ChannelError as exc:
            log.info("reconcile fetch failed", attempt_id=str(attempt.id), failure=exc.failure.value)
            continue
        code = result.raw.get("error_code")
        await pipeline.lock(session, n, attempt)
        await apply_status(
            session,
            n,
            attempt,
            result.status,
            str(code) if code else None,
            result.raw.get("error_message"),
            source="reconciler",
        )
        attempt.updated_at = utcnow()  # not fetched again for another RECONCILE_AFTER
        done += 1
    await session.commit()
    return done


async def sync_templates(*, limit: int = 5) -> int:
    """Sync the Content templates of the tenants whose sync is due; how many were synced (or failed)."""
    async with session_factory()() as session:
        tenants = await template_sync.due(session, limit=limit)
    done = 0
    for tenant_id in tenants:
        async with session_factory()() as session:
            if not await template_sync.claim(session, tenant_id):
                continue  # another worker's pass has it
            try:
                await template_sync.sync(session, tenant_id)
            except ChannelError as exc:
                await session.rollback()
                log.info("content sync failed", tenant_id=str(tenant_id), failure=exc.failure.value)
                await template_sync.record_failure(session, tenant_id, exc)
            except template_sync.SyncRaced:  # an on-demand sync did it at the same moment
                await session.rollback()
            await session.commit()
            done += 1
    return done


async def apply_retention() -> int:
    """Rows redacted or deleted, when this process's retention pass is due; 0 otherwise."""
    global _next_retention
    if time.monotonic() < _next_retention:
        return 0
    outcome = await retention.run(max_batches=RETENTION_BATCHES)
    # A backlog (a first deployment, a shortened setting) is worked off at the maintenance pace.
    _next_retention = time.monotonic() + (0 if outcome.left else RETENTION_EVERY)
    return outcome.total


async def run_once() -> dict[str, int]:
    async with session_factory()() as session:
        swept = await outbox.sweep(session)
    async with session_factory()() as session:
        requeued = await requeue_stuck_sends(session)
    async with session_factory()() as session:
        reconciled = await reconcile(session)
    templates_synced = await sync_templates()
    retained = await apply_retention()
    async with session_factory()() as session:
        conversations = await tiers.forget_expired(session)
        await session.commit()
    return {
        "swept": swept,
        "requeued": requeued,
        "reconciled": reconciled,
        "templates_synced": templates_synced,
        "retention": retained,
        "conversations_forgotten": conversations,
    }
