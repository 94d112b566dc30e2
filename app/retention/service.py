"""Retention: bodies redacted in place after each tenant's body retention, metadata deleted after its
metadata retention (settings: tenants/accounts/retention.py; what each reaches: docs/data.md).

Set-based and batched: every step is one UPDATE or DELETE of at most BATCH rows, chosen by one
SELECT on the tenant and the row's age, in its own short transaction. On PostgreSQL the SELECT
takes its rows `FOR UPDATE SKIP LOCKED`, so a pass never waits on a row a job holds (it is taken by
the next pass) and several workers running passes at once share the work instead of repeating it.
The embedded SQLite serialises writers itself (BEGIN IMMEDIATE). Redaction walks a partial index of
the rows not yet redacted (`ix_<table>_unredacted`), deletion the (tenant_id, created_at) index, so a
pass reads only its work, not the history it finished before.

Tenant by tenant, each with its own settings: every statement is scoped to one tenant (owned_by).

Kept, whatever the settings: contacts and their hashed identifiers, suppressions, the consent
ledger (its evidence), and the audit log. Decisions are the trail of a notification: kept through
the body redaction, deleted with their notification at the metadata retention. Work still in flight
is never redacted (a notification not yet sent, a callback not yet processed, a webhook delivery
still being retried): it is taken by a later pass, once settled.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Delete, Select, Update, delete, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import session_factory, utcnow
from app.core.logging import get_logger
from app.core.repository import owned_by
from app.metrics import registry as metrics
from app.notify.models import IdempotencyRecord, Notification, ProviderEvent
from app.webhooks.models import InboundMessage, RawEvent, WebhookDelivery
from tenants.accounts import retention as settings
from tenants.accounts.models import Tenant
from tenants.contacts.models import ConversationWindow

log = get_logger("notifygw.retention")
BATCH = 500
# A notification still being routed or sent (or an ambiguous send being looked for at Twilio) needs its body.
IN_FLIGHT = ("accepted", "queued", "unknown")
# What a redacted raw callback holds: its kind, dedupe key and times stay in their columns.
REDACTED_EVENT = {"redacted": True, "by": "retention"}


@dataclass(frozen=True)
class Step:
    """One table's redaction or deletion: `name` is what it is counted as (`redacted.notifications`)."""

    name: str
    model: Any
    after: Literal["body", "metadata", "expiry"]  # bodies are redacted, the rest deleted
    age: Any  # the column that dates a row (for "expiry": the time it expires)
    where: tuple[ColumnElement[bool], ...] = ()

    @property
    def redacts(self) -> bool:
        return self.after == "body"


def _delivery_stub(dialect: str) -> Any:
    """The payload a redacted webhook delivery keeps: its event type, and that it was redacted."""
    if dialect == "postgresql":
        return func.jsonb_build_object("type", WebhookDelivery.event_type, "redacted", true())
    return func.json_object("type", WebhookDelivery.event_type, "redacted", func.json("true"))


STEPS: tuple[Step, ...] = (
    Step(
        "redacted.notifications",
        Notification,
        "body",
        Notification.created_at,
        (Notification.redacted_at.is_(None), Notification.status.not_in(IN_FLIGHT)),
    ),
    Step(
        "redacted.inbound_messages",
        InboundMessage,
        "body",
        InboundMessage.created_at,
        (InboundMessage.redacted_at.is_(None),),
    ),
    Step(
        "redacted.raw_events",
        RawEvent,
        "body",
        RawEvent.created_at,
        (RawEvent.redacted_at.is_(None), RawEvent.processed_at.is_not(None)),
    ),
    Step(
        "redacted.webhook_deliveries",
        WebhookDelivery,
        "body",
        WebhookDelivery.created_at,
        (WebhookDelivery.redacted_at.is_(None), WebhookDelivery.status != "pending"),
    ),
    # Deleting a notification deletes its attempts, their provider events and its decisions (foreign keys
    # ON DELETE CASCADE); a webhook delivery its attempts.
    Step("deleted.notifications", Notification, "metadata", Notification.created_at),
    Step(
        "deleted.provider_events",
        ProviderEvent,
        "metadata",
        ProviderEvent.created_at,
        (ProviderEvent.attempt_id.is_(None),),
    ),
    Step("deleted.inbound_messages", InboundMessage, "metadata", InboundMessage.created_at),
    Step("deleted.raw_events", RawEvent, "metadata", RawEvent.created_at),
    Step("deleted.webhook_deliveries", WebhookDelivery, "metadata", WebhookDelivery.created_at),
    Step("deleted.conversation_windows", ConversationWindow, "metadata", ConversationWindow.last_inbound_at),
    # Expired Idempotency-Keys were deleted only when their key came again: the client's key (which may
    # name an order or a person) and the stored response stayed forever otherwise.
    Step("deleted.idempotency_keys", IdempotencyRecord, "expiry", IdempotencyRecord.expires_at),
)


def _values(step: Step, now: datetime, dialect: str) -> dict[Any, Any]:
    model = step.model
    if model is Notification:
        return {
            Notification.variables: {},
            Notification.text: None,
            Notification.media_url: None,
            Notification.sealed_variables: None,
            Notification.redacted_at: now,
        }
    if model is InboundMessage:
        return {
            InboundMessage.body: None,
            InboundMessage.media: [],
            InboundMessage.button_payload: None,
            InboundMessage.redacted_at: now,
        }
    if model is RawEvent:
        return {RawEvent.payload: REDACTED_EVENT, RawEvent.redacted_at: now}
    if model is WebhookDelivery:
        return {WebhookDelivery.payload: _delivery_stub(dialect), WebhookDelivery.redacted_at: now}
    raise ValueError(f"no redaction for {model.__name__}")


def choose(step: Step, tenant_id: uuid.UUID, cutoff: datetime, dialect: str) -> Select[uuid.UUID]:
    """The ids of at most BATCH of the tenant's rows older than `cutoff` that the step takes, oldest first."""
    model = step.model
    chosen = (
        select(model.id)
        .where(owned_by(model, tenant_id), step.age < cutoff, *step.where)
        .order_by(step.age)
        .limit(BATCH)
    )
    return chosen.with_for_update(skip_locked=True) if dialect == "postgresql" else chosen


def change(step: Step, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID], now: datetime, dialect: str) -> Update | Delete:
    """Those rows redacted, or deleted, in one statement.

    Two statements, not `WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`: PostgreSQL does not
    evaluate such a subquery once, and its locking read rechecks the rows the UPDATE just changed,
    finds they no longer match and takes the next ones: with LIMIT 2 it updated 5 rows in the tests."""
    model = step.model
    where = (owned_by(model, tenant_id), model.id.in_(list(ids)))
    if step.redacts:
        return update(model).where(*where).values(_values(step, now, dialect))
    return delete(model).where(*where)


async def _step(
    session: AsyncSession, step: Step, tenant_id: uuid.UUID, cutoff: datetime, now: datetime, max_batches: int | None
) -> tuple[int, bool]:
    """(rows changed, whether rows were left for another pass)."""
    dialect = session.get_bind().dialect.name
    done = batches = 0
    while True:
        ids = (await session.execute(choose(step, tenant_id, cutoff, dialect))).scalars().all()
        if ids:
            await session.execute(change(step, tenant_id, ids, now, dialect))
        await session.commit()  # one short transaction per batch: no lock outlives it
        done += len(ids)
        batches += 1
        if len(ids) < BATCH:
            return done, False
        if max_batches is not None and batches >= max_batches:
            return done, True


async def apply_tenant(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    body_days: int,
    metadata_days: int,
    *,
    now: datetime | None = None,
    max_batches: int | None = None,
) -> tuple[dict[str, int], bool]:
    """One tenant's pass: (rows per step that changed, whether work was left because of `max_batches`)."""
    now = now or utcnow()
    cutoffs = {"body": now - timedelta(days=body_days), "metadata": now - timedelta(days=metadata_days), "expiry": now}
    counts: dict[str, int] = {}
    left = False
    for step in STEPS:
        done, more = await _step(session, step, tenant_id, cutoffs[step.after], now, max_batches)
        if done:
            counts[step.name] = done
        left = left or more
    return counts, left


async def tenants(session: AsyncSession, only: Sequence[uuid.UUID] | None = None) -> list[tuple[uuid.UUID, int, int]]:
    """(tenant id, body days, metadata days in force) of every tenant (or of `only`), suspended ones too."""
    stmt = select(Tenant.id, Tenant.body_retention_days, Tenant.metadata_retention_days).order_by(Tenant.id)
    if only is not None:
        stmt = stmt.where(Tenant.id.in_(list(only)))
    rows = (await session.execute(stmt)).all()
    await session.commit()
    return [(tid, *settings.days(body, metadata)) for tid, body, metadata in rows]


@dataclass
class Outcome:
    counts: dict[str, int]
    left: bool  # some tenant's step stopped at max_batches: run again soon

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def run(
    *, only: Sequence[uuid.UUID] | None = None, max_batches: int | None = None, now: datetime | None = None
) -> Outcome:
    """Every tenant's pass (the workers' maintenance loop, and `notifygw retention run`)."""
    counts: dict[str, int] = {}
    left = False
    async with session_factory()() as session:
        for tenant_id, body_days, metadata_days in await tenants(session, only):
            done, more = await apply_tenant(
                session, tenant_id, body_days, metadata_days, now=now, max_batches=max_batches
            )
            for name, value in done.items():
                counts[name] = counts.get(name, 0) + value
                metrics.RETENTION_ROWS.labels(name).inc(value)
            if done:
                log.info("retention", tenant_id=str(tenant_id), **done)
            left = left or more
    return Outcome(counts, left)
