"""Applying a WhatsApp status (from a callback or the reconciler) to an attempt.

Every event is kept in the attempt's timeline, even one that changes nothing; only a forward
transition changes state. A definitive failure goes through the same step-6 logic as a failure
at send time, so the email fallback still happens exactly once.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.logging import get_logger
from app.notify import pipeline, tiers
from app.notify.models import Attempt, Notification, ProviderEvent
from app.notify.status import TERMINAL, advances
from channels.errors import classify_twilio, twilio_more_info, twilio_reason

log = get_logger("notifygw.status")


async def apply_status(
    session: AsyncSession,
    n: Notification,
    attempt: Attempt,
    status: str,
    code: str | None,
    message: str | None,
    *,
    source: str,
    raw_event_id: uuid.UUID | None = None,
    flush: bool = True,
) -> bool:
    event = ProviderEvent(
        tenant_id=n.tenant_id,
        attempt_id=attempt.id,
        raw_event_id=raw_event_id,
        provider="twilio",
        status=status,
        error_code=code,
        applied=False,
    )
    session.add(event)
    if not advances(attempt.status, status):
        if flush:
            await session.flush()
        return False
    event.applied = True
    log.debug("status applied", attempt_id=str(attempt.id), status=status, source=source)
    if status in TERMINAL:
        attempt.status = status
        failure = classify_twilio(code)
        detail = message or twilio_reason(code) or f"status {status}"
        if n.channel == "whatsapp" and code == "63018" and await tiers.after_63018(session, n, attempt, detail):
            pass  # a burst sent again, or the sender's tier lowered and the policy at the cap applied
        elif n.channel == "whatsapp":
            await pipeline.whatsapp_failed(session, n, attempt, failure, code, detail)
            attempt.status = status  # keep Twilio's own word (undelivered vs failed)
        else:  # already carried by email: recorded, nothing else changes
            attempt.error_class, attempt.error_code, attempt.error_message = failure.value, code, detail
            attempt.error_more_info = twilio_more_info(code)
    else:
        attempt.status = status
        pipeline.sync_status(n, attempt)
    if flush:
        await session.flush()
    return True
