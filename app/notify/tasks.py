"""Notify actors. Jobs carry one id; the outbox row for (kind, id) is marked done when the work is."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.queue import task
from app.notify import pipeline, sending
from app.notify.models import Notification
from app.notify.service import ROUTE
from app.outbox import service as outbox


@task("notifications.route", queue="notifications")
async def route_notification(session: AsyncSession, notification_id: str) -> None:
    ref = uuid.UUID(notification_id)
    n = await session.get(Notification, ref)
    if n is not None:
        await pipeline.route(session, n)
        await pipeline.publish_updates(session)
    await outbox.complete(session, ROUTE, ref)


@task("notifications.send_whatsapp", queue="whatsapp")
async def send_whatsapp(session: AsyncSession, attempt_id: str) -> None:
    await _send(session, attempt_id, pipeline.SEND_WHATSAPP, sending.send_whatsapp)


@task("notifications.send_email", queue="email")
async def send_email(session: AsyncSession, attempt_id: str) -> None:
    await _send(session, attempt_id, pipeline.SEND_EMAIL, sending.send_email)


async def _send(session: AsyncSession, attempt_id: str, kind: str, do) -> None:  # noqa: ANN001
    ref = uuid.UUID(attempt_id)
    found = await pipeline.load_attempt(session, ref)
    if found is None:
        await outbox.complete(session, kind, ref)
        return
    n, attempt = found
    await do(session, n, attempt)
    await pipeline.publish_updates(session)
    # Still waiting (paced or retrying) means the outbox row was rescheduled, not finished.
    if attempt.status not in sending.SENDABLE:
        await outbox.complete(session, kind, ref)


outbox.register(ROUTE, route_notification)
outbox.register(pipeline.SEND_WHATSAPP, send_whatsapp)
outbox.register(pipeline.SEND_EMAIL, send_email)
