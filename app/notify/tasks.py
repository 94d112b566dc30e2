"""Notify actors. Jobs carry one id; the outbox row for (kind, id) is marked done when the work is.

Every actor is the same skeleton (`_run_job`): load its rows scoped to the tenant its outbox row names
(app/notify/lookups.py), hold the work while that tenant is suspended, else do it, then publish what
changed and mark the row done unless the work rescheduled itself.

A suspended tenant's work is held, not run: its outbox row waits (not a try) and the sweeper sends
it again once the tenant is active. The one exception is an opt-out confirmation, which is finished
instead: a confirmation held back while suspended is never sent later.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.notify import ambiguity, lookups, pipeline, sending
from app.notify.kinds import ROUTE
from app.notify.models import Attempt, Notification
from app.outbox import service as outbox

ATTEMPT_KINDS = (pipeline.SEND_WHATSAPP, pipeline.SEND_EMAIL, ambiguity.CHECK_WHATSAPP)
# (session, kind, ref) -> (notification, attempt or None, the tenant's status), or None when gone.
Load = Callable[[AsyncSession, str, uuid.UUID], Awaitable[tuple[Notification, Attempt | None, str] | None]]
# (session, notification, attempt) -> True when the job is finished, False when it rescheduled itself
# (or completed its outbox row itself).
Work = Callable[[AsyncSession, Notification, Any], Awaitable[bool]]


async def _load_notification(session: AsyncSession, kind: str, ref: uuid.UUID) -> Any:
    found = await lookups.notification_job(session, kind, ref)
    return None if found is None else (found[0], None, found[1])


async def _run_job(
    session: AsyncSession,
    kind: str,
    ref_id: str,
    work: Work,
    *,
    load: Load = lookups.attempt_job,
    held: Callable[[Attempt | None], bool] = lambda _: True,
) -> None:
    ref = uuid.UUID(ref_id)
    found = await load(session, kind, ref)
    finished = True
    if found is not None:
        n, attempt, tenant_status = found
        if tenant_status != "active" and held(attempt):
            if await pipeline.while_suspended(session, n, attempt):
                await outbox.hold(session, kind, ref)
                return
        else:
            finished = await work(session, n, attempt)
    await pipeline.publish_updates(session)
    if finished:
        await outbox.complete(session, kind, ref)


async def _route(session: AsyncSession, n: Notification, _: None) -> bool:
    """Route, then send the WhatsApp message it starts in the same run: no send job, no second lock and
    read of the rows. The route's outbox row is completed in the transaction that records `sending`;
    a send that has to wait (paced, a retry, the sender's tier) queues its own job then, and one whose
    worker dies mid-call is found by the stuck-send repair (docs/delivery-guarantees.md), as before."""
    # False: held for quiet hours, the route job rescheduled itself (its outbox row stays pending).
    finished, started = await pipeline.route_to_send(session, n, locked=True)  # notification_job took the lock
    if started is None:
        return finished
    with session.no_autoflush:  # the new attempt is inserted once, as `sending` (pipeline._start_whatsapp)
        await outbox.complete(session, ROUTE, n.id)
    await sending.send(session, n, started.attempt, started)
    return False  # completed above: nothing for _run_job to complete


async def _send(session: AsyncSession, n: Notification, attempt: Attempt) -> bool:
    await sending.send(session, n, attempt)
    # Still waiting (paced or retrying) means the outbox row was rescheduled, not finished.
    return attempt.status not in sending.SENDABLE


async def _notification_dead(session: AsyncSession, notification_id: uuid.UUID, error: str) -> None:
    n = await lookups.dead_notification(session, [ROUTE], notification_id)
    if n is not None:
        pipeline.decide(session, n, "dead_letter", ROUTE, f"routing stopped after {outbox.MAX_TRIES} tries: {error}")


async def _attempt_dead(session: AsyncSession, attempt_id: uuid.UUID, error: str) -> None:
    found = await lookups.dead_attempt(session, ATTEMPT_KINDS, attempt_id)
    if found is not None:
        n, attempt = found
        pipeline.decide(
            session,
            n,
            "dead_letter",
            f"send_{attempt.channel}",
            f"sending stopped after {outbox.MAX_TRIES} tries: {error}",
        )


@outbox.job(ROUTE, "notifications.route", queue="notifications", on_dead=_notification_dead)
async def route_notification(session: AsyncSession, notification_id: str) -> None:
    await _run_job(session, ROUTE, notification_id, _route, load=_load_notification)


@outbox.job(pipeline.SEND_WHATSAPP, "notifications.send_whatsapp", queue="whatsapp", on_dead=_attempt_dead)
async def send_whatsapp(session: AsyncSession, attempt_id: str) -> None:
    await _run_job(session, pipeline.SEND_WHATSAPP, attempt_id, _send, held=_sendable)


@outbox.job(pipeline.SEND_EMAIL, "notifications.send_email", queue="email", on_dead=_attempt_dead)
async def send_email(session: AsyncSession, attempt_id: str) -> None:
    await _run_job(session, pipeline.SEND_EMAIL, attempt_id, _send, held=_sendable)


def _sendable(attempt: Attempt | None) -> bool:
    """A send is held only while it may still go out; one already settled just finishes."""
    return attempt is not None and attempt.status in sending.SENDABLE


@outbox.job(ambiguity.CHECK_WHATSAPP, "notifications.check_whatsapp", queue="whatsapp", on_dead=_attempt_dead)
async def check_whatsapp(session: AsyncSession, attempt_id: str) -> None:
    """Did Twilio accept an ambiguous send? (app/notify/ambiguity.py). A check may resend, so a
    suspended tenant's check is held like its sends."""
    await _run_job(session, ambiguity.CHECK_WHATSAPP, attempt_id, ambiguity.check)
