"""Periodic repair work, run by every worker process (all of it is safe to run concurrently).

- the outbox sweep re-enqueues work the queue lost;
- an attempt stuck in `sending` with no SID past the grace period is sent again, flagged
  `possible_duplicate` (the worker may have died after Twilio accepted it; Twilio has no
  idempotency key for Messages);
- the reconciler fetches from Twilio the attempts with no terminal status after 10 minutes,
  because Twilio stops retrying a status callback after about 15 s.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import providers
from app.core.db import session_factory, utcnow
from app.core.logging import get_logger
from app.notify import pipeline
from app.notify.models import Attempt, Notification
from app.notify.status import OPEN
from app.outbox import service as outbox
from channels.base import ChannelError
from tenants.credentials import service as credentials

log = get_logger("notifygw.maintenance")
SENDING_GRACE = timedelta(minutes=2)
RECONCILE_AFTER = timedelta(minutes=10)


async def requeue_stuck_sends(session: AsyncSession, *, limit: int = 200) -> int:
    cutoff = utcnow() - SENDING_GRACE
    stmt = (select(Attempt).where(Attempt.status == "sending", Attempt.provider_message_id.is_(None),
                                  Attempt.sending_started_at < cutoff).limit(limit))
    if session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    stuck = (await session.execute(stmt)).scalars().all()
    for attempt in stuck:
        attempt.status, attempt.possible_duplicate = "pending", True
        kind = pipeline.SEND_WHATSAPP if attempt.channel == "whatsapp" else pipeline.SEND_EMAIL
        await outbox.enqueue(session, attempt.tenant_id, kind, attempt.id)
    await session.commit()
    return len(stuck)


async def reconcile(session: AsyncSession, *, limit: int = 100) -> int:
    """Bring stale WhatsApp attempts up to date from Twilio's record of them."""
    from app.webhooks.status import apply_status  # the same path a status callback takes

    cutoff = utcnow() - RECONCILE_AFTER
    rows = (await session.execute(
        select(Attempt, Notification).join(Notification, Notification.id == Attempt.notification_id)
        .where(Attempt.channel == "whatsapp", Attempt.provider == "twilio", Attempt.provider_message_id.is_not(None),
               Attempt.status.in_(OPEN - {"pending", "retry_wait", "sending"}), Attempt.updated_at < cutoff)
        .limit(limit)
    )).all()
    done = 0
    for attempt, n in rows:
        row = await credentials.find_twilio(session, n.tenant_id)
        if row is None:
            continue
        try:
            result = await providers.twilio().fetch_message(credentials.twilio_secrets(row), attempt.provider_message_id)
        except ChannelError as exc:
            log.info("reconcile fetch failed", attempt_id=str(attempt.id), failure=exc.failure.value)
            continue
        code = result.raw.get("error_code")
        await pipeline.lock(session, n, attempt)
        await apply_status(session, n, attempt, result.status, str(code) if code else None,
                           result.raw.get("error_message"), source="reconciler")
        attempt.updated_at = utcnow()  # not fetched again for another RECONCILE_AFTER
        done += 1
    await session.commit()
    return done


async def run_once() -> dict[str, int]:
    async with session_factory()() as session:
        swept = await outbox.sweep(session)
    async with session_factory()() as session:
        requeued = await requeue_stuck_sends(session)
    async with session_factory()() as session:
        reconciled = await reconcile(session)
    return {"swept": swept, "requeued": requeued, "reconciled": reconciled}
