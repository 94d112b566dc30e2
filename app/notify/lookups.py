"""The hot-path reads of notifications and attempts, each tenant-scoped, in one place.

Jobs, callbacks and the ambiguity check read rows by an id or a provider's message id, many times a
second, outside any request (so outside the scoped repositories of app/core/repository.py). Every
such read is here, and every one filters by the tenant it acts for:

- a job carries only an id: its tenant is the one its outbox row names (the record of who asked for
  the work), and the rows it loads must belong to that tenant, the notification to the attempt's;
- a callback's tenant is the one whose credentials signed it (app/webhooks/controllers.py).

This module and the scoped repository base are the only places with a hand-written `tenant_id ==`
(tests/meta/test_tenant_scoping.py keeps it so).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.notify import pipeline
from app.notify.models import Attempt, Notification
from app.outbox.models import OutboxItem
from tenants.accounts.models import Tenant
from tenants.contacts import service as contacts


def _job_tenant(ref_id: Any, kinds: Any) -> Any:
    """The tenant the outbox row of this work names (one row per (kind, ref): kinds sharing a ref agree)."""
    return (
        select(OutboxItem.tenant_id)
        .where(OutboxItem.kind.in_(kinds), OutboxItem.ref_id == ref_id)
        .limit(1)
        .scalar_subquery()
    )


def _same_tenant() -> ColumnElement[bool]:
    return (Notification.id == Attempt.notification_id) & (Notification.tenant_id == Attempt.tenant_id)


# The job and callback reads run several times per notification: built once with bound parameters, they
# skip the statement construction and cache-key work SQLAlchemy repeats for a statement built per call
# (about 150 us of CPU each, measured; a tenth of a worker's CPU over its dozens of reads per notification).
_REF: Any = bindparam("ref")
_KINDS: Any = bindparam("kinds", expanding=True)
_TENANT: Any = bindparam("tenant")

_NOTIFICATION_JOB = (
    select(Notification, Tenant.status)
    .join(Tenant, Tenant.id == Notification.tenant_id)
    .where(Notification.id == _REF, Notification.tenant_id == _job_tenant(_REF, _KINDS))
    .with_for_update(of=Notification)
)

# FOR UPDATE OF takes the row locks in the order it names them: the notification first, as pipeline.lock.
_ATTEMPT_JOB = (
    select(Notification, Attempt, Tenant.status)
    .select_from(Notification)
    .join(Attempt, _same_tenant())
    .join(Tenant, Tenant.id == Attempt.tenant_id)
    .where(Attempt.id == _REF, Attempt.tenant_id == _job_tenant(_REF, _KINDS))
    .with_for_update(of=[Notification, Attempt])
)

_TENANTS_ATTEMPT = (
    select(Notification, Attempt)
    .select_from(Notification)
    .join(Attempt, _same_tenant())
    .where(Attempt.tenant_id == _TENANT)
    .with_for_update(of=[Notification, Attempt])
)
_ATTEMPT_BY_ID = _TENANTS_ATTEMPT.where(Attempt.id == _REF)
_ATTEMPT_BY_PROVIDER_ID = _TENANTS_ATTEMPT.where(
    Attempt.provider == bindparam("provider"), Attempt.provider_message_id == bindparam("provider_id")
)


async def notification_job(
    session: AsyncSession, kind: str, notification_id: uuid.UUID
) -> tuple[Notification, str] | None:
    """(notification, its tenant's status) for a routing job, the notification locked in the same
    statement; None when it is gone or not that tenant's."""
    row = (await session.execute(_NOTIFICATION_JOB, {"ref": notification_id, "kinds": [kind]})).one_or_none()
    if row is None:
        return None
    pipeline.remember_locked(session, row[0])
    return row[0], row[1]


async def attempt_job(
    session: AsyncSession, kind: str, attempt_id: uuid.UUID
) -> tuple[Notification, Attempt, str] | None:
    """(notification, attempt, the tenant's status) for a send or check job, read in one query, with
    both rows locked (pipeline.lock's order); None when gone or not the job's tenant's."""
    row = (await session.execute(_ATTEMPT_JOB, {"ref": attempt_id, "kinds": [kind]})).one_or_none()
    if row is None:
        return None
    n, attempt, tenant_status = row
    pipeline.remember_locked(session, n)
    return n, attempt, tenant_status


async def dead_notification(session: AsyncSession, kinds: Iterable[str], ref_id: uuid.UUID) -> Notification | None:
    """The notification whose job (a routing job's ref) was just dead-lettered."""
    stmt = select(Notification).where(
        Notification.id == ref_id, Notification.tenant_id == _job_tenant(ref_id, list(kinds))
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def dead_attempt(
    session: AsyncSession, kinds: Iterable[str], ref_id: uuid.UUID
) -> tuple[Notification, Attempt] | None:
    """(notification, attempt) whose job (an attempt's ref) was just dead-lettered."""
    row = (
        await session.execute(
            select(Attempt, Notification)
            .join(Notification, _same_tenant())
            .where(Attempt.id == ref_id, Attempt.tenant_id == _job_tenant(ref_id, list(kinds)))
        )
    ).one_or_none()
    return None if row is None else (row[1], row[0])


async def notification_of(session: AsyncSession, attempt: Attempt) -> Notification | None:
    """The attempt's notification, of the attempt's own tenant."""
    stmt = select(Notification).where(
        Notification.id == attempt.notification_id, Notification.tenant_id == attempt.tenant_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def stuck_sends(session: AsyncSession, cutoff: datetime, limit: int) -> list[tuple[Attempt, Notification]]:
    """Every tenant's attempts left `sending` with no provider id since before `cutoff` (the maintenance pass)."""
    rows = await session.execute(
        select(Attempt, Notification)
        .join(Notification, _same_tenant())
        .where(Attempt.status == "sending", Attempt.provider_message_id.is_(None), Attempt.sending_started_at < cutoff)
        .limit(limit)
    )
    return [(a, n) for a, n in rows]


async def stale_whatsapp(
    session: AsyncSession, cutoff: datetime, statuses: Iterable[str], limit: int
) -> list[tuple[Attempt, Notification]]:
    """Every tenant's Twilio attempts in one of `statuses`, unchanged since `cutoff` (the reconciler)."""
    rows = await session.execute(
        select(Attempt, Notification)
        .join(Notification, _same_tenant())
        .where(
            Attempt.channel == "whatsapp",
            Attempt.provider == "twilio",
            Attempt.provider_message_id.is_not(None),
            Attempt.status.in_(list(statuses)),
            Attempt.updated_at < cutoff,
        )
        .limit(limit)
    )
    return [(a, n) for a, n in rows]


def as_uuid(value: object) -> uuid.UUID | None:
    """A provider event's attempt reference as a UUID; None when it is missing or is none."""
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


async def find_attempt(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    provider: str,
    *,
    attempt_ref: object = None,
    provider_id: str | None = None,
    same_message: bool = False,
) -> tuple[Attempt, Notification] | None:
    """The tenant's attempt a provider event names, with its notification: by our attempt id when the
    event carries it, else by the provider's message id. With `same_message`, an attempt found by id
    counts only while it has no provider id yet or this one (Twilio: a resent copy's SID is another
    message, not this attempt's). Both rows come locked (pipeline.lock's order), read in the same statement:
    the event applying them changes them, or records an event that references the attempt."""
    found: Any = None
    ref = as_uuid(attempt_ref)
    if ref is not None:
        by_id = (await session.execute(_ATTEMPT_BY_ID, {"tenant": tenant_id, "ref": ref})).one_or_none()
        if by_id is not None and (not same_message or by_id[1].provider_message_id in (None, provider_id)):
            found = by_id
    if found is None and provider_id:
        named = {"tenant": tenant_id, "provider": provider, "provider_id": provider_id}
        found = (await session.execute(_ATTEMPT_BY_PROVIDER_ID, named)).one_or_none()
    if found is None:
        return None
    n, attempt = found
    pipeline.remember_locked(session, n)
    return attempt, n


async def attempts_named(
    session: AsyncSession,
    provider: str,
    by_id: Iterable[tuple[uuid.UUID, uuid.UUID]],
    by_provider_id: Iterable[tuple[uuid.UUID, str]],
) -> list[tuple[Notification, Attempt]]:
    """Every attempt a batch of provider events may name, in one query: by (tenant, our attempt id) and
    by (tenant, the provider's message id), each pair of the event's own tenant. Both rows come locked,
    taken in notification order, so concurrent drains wait for each other instead of deadlocking. The
    caller picks each event's attempt among them with find_attempt's rules."""
    ids, provider_ids = list(set(by_id)), list(set(by_provider_id))
    named: list[ColumnElement[bool]] = []
    if ids:
        named.append(tuple_(Attempt.tenant_id, Attempt.id).in_(ids))
    if provider_ids:
        named.append(
            (Attempt.provider == provider) & tuple_(Attempt.tenant_id, Attempt.provider_message_id).in_(provider_ids)
        )
    if not named:
        return []
    rows = await session.execute(
        select(Notification, Attempt)
        .select_from(Notification)
        .join(Attempt, _same_tenant())
        .where(or_(*named))
        .order_by(Notification.id)
        .with_for_update(of=[Notification, Attempt])
    )
    found = [(n, attempt) for n, attempt in rows]
    for n, _ in found:
        pipeline.remember_locked(session, n)
    return found


async def taken_message_ids(session: AsyncSession, tenant_id: uuid.UUID, provider: str, ids: list[str]) -> set[str]:
    """Which of these provider message ids already belong to one of the tenant's attempts."""
    if not ids:
        return set()
    rows = await session.execute(
        select(Attempt.provider_message_id).where(
            Attempt.tenant_id == tenant_id, Attempt.provider == provider, Attempt.provider_message_id.in_(ids)
        )
    )
    return {sid for (sid,) in rows if sid is not None}


async def email_of(session: AsyncSession, n: Notification, idents: Any = None) -> str | None:
    """The address an email for this notification goes to: the request's own, else the contact's current one."""
    email = n.recipient.get("email")
    if email:
        return str(email)
    if idents is None:
        idents = await contacts.identifiers(session, n.tenant_id, n.contact_id)
    current = contacts.current(idents, "email")
    return str(current) if current else None
