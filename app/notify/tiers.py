"""Meta's messaging-limit tiers, per WhatsApp sender (FACTS §6.1, docs/tiers.md).

A sender may open business-initiated conversations with so many distinct people in a rolling 24 h
(250, 1K, 10K, 100K, then unlimited). A template sent outside the customer-care window opens one; a
person already in the sender's 24 h set does not open another. Past the tier, Twilio ends the message
undelivered with 63018, which is also its answer to a burst over the sender's MPS.

- `admit` (the send path, before `sending` is committed): a template to a person outside the window and
  outside the 24 h set is counted (one upsert in `whatsapp_conversations`), or, at the cap, held until
  capacity returns (at most `hold_seconds` after acceptance) or sent by email, as the policy says.
- `after_63018` (a status callback): a burst (the sender below its cap and our recent sends near its
  pacing) is sent again after a backoff; otherwise the tier is lower than we assumed: it is lowered
  (`whatsapp_sender_limits`), the tenant is told (event `whatsapp.sender_capped`, metric), and the message
  is held or goes by email like any send at the cap.

The database is the source of truth: the count is one indexed COUNT over at most a tier's rows, and
two workers opening conversations for one sender at once are serialised by a transaction-scoped
advisory lock (PostgreSQL; SQLite serialises writers already).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import insert_on_conflict, table_of, utcnow
from app.core.repository import owned_by, repository
from app.metrics import registry as metrics
from app.notify import pipeline
from app.notify.models import Attempt, Notification, WhatsAppConversation, WhatsAppSenderLimit
from app.outbox import service as outbox
from channels.base import FailureClass
from tenants.contacts.models import ConversationWindow
from tenants.contacts.service import WINDOW
from tenants.routing.schemas import TIERS, RoutingPolicyDoc
from tenants.routing.service import get_policy

DAY = timedelta(hours=24)
STEP = "tier"  # the decision step
ERROR_CLASS = "messaging_limit"  # an attempt held or stopped at the cap
# A held send looks again at least this often (capacity returns as the oldest conversation turns 24 h old).
HOLD_RECHECK_SECONDS = 60.0
# WhatsApp attempts a notification may make after 63018s taken for bursts, before it is a plain failure.
BURST_RETRIES = 3
# A 63018 is a burst when the sender's sends around it reached this share of its pacing.
BURST_SHARE = 0.8

_CONVERSATIONS = table_of(WhatsAppConversation)
_LIMITS = table_of(WhatsAppSenderLimit)


def configured_tier(policy: RoutingPolicyDoc, sender: str) -> int | None:
    """The tier the tenant set for this sender (or the default); None: unlimited."""
    limits = policy.whatsapp.limits
    tier = limits.tiers.get(sender, limits.default_tier)
    return None if tier == "unlimited" else int(tier)


async def effective_tier(
    session: AsyncSession, tenant_id: uuid.UUID, policy: RoutingPolicyDoc, sender: str
) -> int | None:
    """The policy's tier, or the lower one a 63018 taught us while the policy still says what it said then."""
    configured = configured_tier(policy, sender)
    row = await repository(session, tenant_id, WhatsAppSenderLimit).one_by(sender=sender)
    return _in_force(configured, row)


def _in_force(configured: int | None, row: WhatsAppSenderLimit | None) -> int | None:
    if row is None or row.configured_tier != configured:
        return configured
    return row.assumed_tier if configured is None else min(configured, row.assumed_tier)


async def distinct_24h(session: AsyncSession, tenant_id: uuid.UUID, sender: str, now: datetime | None = None) -> int:
    """Distinct people this sender opened a business-initiated conversation with in the last 24 h."""
    since = (now or utcnow()) - DAY
    return (
        await session.execute(
            select(func.count())
            .select_from(WhatsAppConversation)
            .where(
                owned_by(WhatsAppConversation, tenant_id),
                WhatsAppConversation.sender == sender,
                WhatsAppConversation.opened_at > since,
            )
        )
    ).scalar_one()


@dataclass(frozen=True)
class SenderState:
    """One sender's messaging limit as `admit` sees it now (the console's Rules page)."""

    sender: str
    configured: int | None  # the policy's tier for it (its own, or the default); None: unlimited
    tier: int | None  # what sends are counted against: the configured one, or lower after a 63018
    distinct_24h: int  # distinct people it opened a business-initiated conversation with in the last 24 h
    capped_at: datetime | None  # when a 63018 lowered it (None: no lower tier in force)


async def senders_state(
    session: AsyncSession, tenant_id: uuid.UUID, policy: RoutingPolicyDoc, also: Iterable[str] = ()
) -> list[SenderState]:
    """Every sender the tenant's tiers concern: those the policy names (tiers, Messaging Services), those a
    63018 lowered, those with conversations in the last 24 h, and `also` (the Twilio credentials' senders).
    Two queries: the 24 h counts by sender, and the stored lower tiers."""
    since = utcnow() - DAY
    result = await session.execute(
        select(WhatsAppConversation.sender, func.count())
        .where(owned_by(WhatsAppConversation, tenant_id), WhatsAppConversation.opened_at > since)
        .group_by(WhatsAppConversation.sender)
    )
    counted: dict[str, int] = {sender: int(n) for sender, n in result}
    lowered = {row.sender: row for row in await repository(session, tenant_id, WhatsAppSenderLimit).all()}
    named = [*policy.whatsapp.limits.tiers, policy.whatsapp.messaging_service_sid, *policy.whatsapp.by_country.values()]
    states = []
    for sender in sorted({s for s in (*named, *also, *counted, *lowered) if s}):
        configured, row = configured_tier(policy, sender), lowered.get(sender)
        tier = _in_force(configured, row)
        in_force = row is not None and row.configured_tier == configured
        capped = row.capped_at if in_force and row is not None else None
        states.append(SenderState(sender, configured, tier, counted.get(sender, 0), capped))
    return states


@dataclass(frozen=True)
class _SenderView:
    """What `admit` reads of one sender and contact, in one statement under the sender's lock."""

    last_inbound: datetime | None  # the contact's latest inbound (the window) to this sender, or to any via MG
    opened_at: datetime | None  # the contact's conversation with this sender, if any
    lowered: WhatsAppSenderLimit | None  # a lower tier a 63018 taught us (only its tier columns are read)
    distinct_24h: int


def _sender_view_statement(any_sender_window: bool) -> Any:
    """One read, built once per shape and run with bound values (py-spy had building it per send at
    6.5 % of a worker's time): the contact's last inbound, the open conversation, the lowered tier,
    and the sender's 24 h count."""
    tenant: Any = bindparam("tenant_id")
    sender: Any = bindparam("sender")
    contact: Any = bindparam("contact_id")
    conversations = owned_by(WhatsAppConversation, tenant), WhatsAppConversation.sender == sender
    window = select(func.max(ConversationWindow.last_inbound_at)).where(
        owned_by(ConversationWindow, tenant), ConversationWindow.contact_id == contact
    )
    if not any_sender_window:
        window = window.where(ConversationWindow.sender == bindparam("window_sender"))
    limit = select(WhatsAppSenderLimit).where(
        owned_by(WhatsAppSenderLimit, tenant), WhatsAppSenderLimit.sender == sender
    )
    return select(
        window.scalar_subquery(),
        select(WhatsAppConversation.opened_at)
        .where(*conversations, WhatsAppConversation.contact_id == contact)
        .scalar_subquery(),
        limit.with_only_columns(WhatsAppSenderLimit.configured_tier).scalar_subquery(),
        limit.with_only_columns(WhatsAppSenderLimit.assumed_tier).scalar_subquery(),
        select(func.count())
        .select_from(WhatsAppConversation)
        .where(*conversations, WhatsAppConversation.opened_at > bindparam("since"))
        .scalar_subquery(),
    )


_SENDER_VIEW = {shape: _sender_view_statement(shape) for shape in (False, True)}


async def _sender_view(session: AsyncSession, n: Notification, attempt: Attempt, now: datetime) -> _SenderView:
    sender, window_sender = attempt.sender or "", _window_sender(attempt)
    params = {"tenant_id": n.tenant_id, "sender": sender, "contact_id": n.contact_id, "since": now - DAY}
    if window_sender:
        params["window_sender"] = window_sender
    row = (await session.execute(_SENDER_VIEW[not window_sender], params)).one()
    last, opened, configured, assumed, count = row
    lowered = None if assumed is None else WhatsAppSenderLimit(configured_tier=configured, assumed_tier=assumed)
    return _SenderView(last, opened, lowered, int(count))


async def _lock_sender(session: AsyncSession, tenant_id: uuid.UUID, sender: str) -> None:
    """Serialise the count-then-open of one sender until this transaction ends (the send commits at once)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"tier:{tenant_id}:{sender}"}
        )


def _window_sender(attempt: Attempt) -> str | None:
    # Through a Messaging Service the window is the contact's last inbound to any of the tenant's senders.
    return None if (attempt.sender or "").startswith("MG") else attempt.sender


def counts(attempt: Attempt) -> bool:
    """Only a live WhatsApp template can open a business-initiated conversation (test keys reach no one)."""
    return attempt.channel == "whatsapp" and attempt.kind == "template" and attempt.provider != "simulated"


async def admit(session: AsyncSession, n: Notification, attempt: Attempt) -> bool:
    """True to send now (the conversation counted when it opens one); False when held or sent by email.
    Three statements: the sender's lock, one read of the window, the conversation, the lowered tier and the
    24 h count, and the upsert that opens the conversation."""
    if not counts(attempt) or not attempt.sender:
        return True
    sender, now = attempt.sender, utcnow()
    with session.no_autoflush:  # the attempt's pending fields go in the `sending` UPDATE, not one of their own
        await _lock_sender(session, n.tenant_id, sender)
        seen = await _sender_view(session, n, attempt, now)
    if seen.last_inbound is not None and now - seen.last_inbound < WINDOW:
        return True  # inside the customer-care window (opened since routing): not business-initiated
    if seen.opened_at is not None and now - seen.opened_at < DAY:
        pipeline.decide(session, n, STEP, "already_open", f"already in {sender}'s 24 h set: no new conversation")
        return True
    policy = await get_policy(session, n.tenant_id)
    tier = _in_force(configured_tier(policy, sender), seen.lowered)
    if tier is None:
        await _open(session, n, sender, now)
        pipeline.decide(session, n, STEP, "opens", f"{sender}: unlimited tier")
        return True
    if seen.distinct_24h < tier:
        await _open(session, n, sender, now)
        pipeline.decide(
            session, n, STEP, "opens", f"conversation {seen.distinct_24h + 1} of {tier} for {sender} in 24 h"
        )
        return True
    detail = f"{seen.distinct_24h} of {tier} distinct people in 24 h for {sender}"
    await _at_cap(session, n, attempt, policy, detail, now)
    return False


async def _open(session: AsyncSession, n: Notification, sender: str, now: datetime) -> None:
    stmt = insert_on_conflict(session, _CONVERSATIONS).values(
        id=uuid.uuid4(), tenant_id=n.tenant_id, sender=sender, contact_id=n.contact_id, opened_at=now, created_at=now
    )
    with session.no_autoflush:
        await session.execute(
            stmt.on_conflict_do_update(index_elements=["tenant_id", "sender", "contact_id"], set_={"opened_at": now})
        )


async def _at_cap(
    session: AsyncSession, n: Notification, attempt: Attempt, policy: RoutingPolicyDoc, detail: str, now: datetime
) -> None:
    """The policy at the cap: hold until capacity returns (before the deadline), else email. Recorded either way."""
    limits = policy.whatsapp.limits
    if limits.at_cap == "hold":
        due = n.created_at + timedelta(seconds=limits.hold_seconds)
        if now < due:
            frees = await _capacity_returns(session, n.tenant_id, attempt.sender or "", now)
            wait = min((min(due, frees) - now).total_seconds() if frees else HOLD_RECHECK_SECONDS, HOLD_RECHECK_SECONDS)
            if attempt.error_class != ERROR_CLASS:  # once per hold, not at every look
                pipeline.decide(
                    session,
                    n,
                    STEP,
                    "held",
                    f"{detail}; held until capacity returns, at most until {due:%Y-%m-%dT%H:%M:%SZ}",
                )
                attempt.error_class, attempt.error_message = ERROR_CLASS, f"held at the messaging limit: {detail}"
            await outbox.enqueue(
                session, n.tenant_id, pipeline.SEND_WHATSAPP, attempt.id, delay_ms=max(50, int(wait * 1000))
            )
            return
        pipeline.decide(
            session,
            n,
            STEP,
            "hold_expired",
            f"{detail}; held for {limits.hold_seconds} s, the longest the policy allows",
        )
    else:
        pipeline.decide(session, n, STEP, "at_cap", f"{detail}; the policy sends by email")
    attempt.status, attempt.error_class, attempt.error_message = "failed", ERROR_CLASS, f"messaging limit: {detail}"
    reason = "messaging_limit" if "messaging_limit" in policy.fallback.email_on else "failed"
    await pipeline.fall_back(session, n, reason, policy=policy)
    if n.channel == "whatsapp":
        pipeline.set_status(n, "failed")


async def _capacity_returns(session: AsyncSession, tenant_id: uuid.UUID, sender: str, now: datetime) -> datetime | None:
    """When the oldest conversation in the sender's 24 h set turns 24 h old."""
    oldest = (
        await session.execute(
            select(func.min(WhatsAppConversation.opened_at)).where(
                owned_by(WhatsAppConversation, tenant_id),
                WhatsAppConversation.sender == sender,
                WhatsAppConversation.opened_at > now - DAY,
            )
        )
    ).scalar_one_or_none()
    return None if oldest is None else oldest + DAY


async def forget_expired(session: AsyncSession) -> int:
    """Delete every tenant's conversations opened more than 24 h ago (the maintenance pass): they count no more."""
    result = await session.execute(delete(WhatsAppConversation).where(WhatsAppConversation.opened_at <= utcnow() - DAY))
    return int(getattr(result, "rowcount", 0) or 0)


# --- 63018 from a status callback ------------------------------------------------------------------


async def after_63018(session: AsyncSession, n: Notification, attempt: Attempt, detail: str) -> bool:
    """True when handled here (a burst sent again, or the tier lowered and the policy applied); False to let
    step 6 treat it as a plain failure (not a counted template, or the burst retries are spent)."""
    if not counts(attempt) or not attempt.sender or n.channel != "whatsapp":
        return False
    sender, now = attempt.sender, utcnow()
    policy = await get_policy(session, n.tenant_id)
    configured = configured_tier(policy, sender)
    tier = await effective_tier(session, n.tenant_id, policy, sender)
    count = await distinct_24h(session, n.tenant_id, sender, now)
    recent, needed = await _recent_sends(session, n.tenant_id, attempt, policy.whatsapp.sender_rate_per_second)
    attempt.error_class, attempt.error_code, attempt.error_message = FailureClass.RATE_LIMITED.value, "63018", detail
    attempt.error_more_info = "https://www.twilio.com/docs/errors/63018"
    if (tier is None or count < tier) and recent >= needed:
        tries = await _whatsapp_attempts(session, n)
        if tries > BURST_RETRIES:
            return False
        metrics.WHATSAPP_63018.labels(str(n.tenant_id), "burst").inc()
        why = f"{recent} sends within pacing's reach and {count} of {tier or 'unlimited'} people: a burst over the MPS"
        pipeline.decide(
            session, n, STEP, "burst", f"Twilio 63018: {why}; sent again (retry {tries} of {BURST_RETRIES})"
        )
        from app.notify.sending import backoff_ms

        await _again(session, n, attempt, "retry_wait", backoff_ms(tries, None))
        return True
    # The tier: this person was not reached, so they are not in the set; the sender's tier is what it holds now.
    await session.execute(
        delete(WhatsAppConversation).where(
            owned_by(WhatsAppConversation, n.tenant_id),
            WhatsAppConversation.sender == sender,
            WhatsAppConversation.contact_id == n.contact_id,
        )
    )
    count = await distinct_24h(session, n.tenant_id, sender, now)
    assumed = lowered_tier(count, tier)
    metrics.WHATSAPP_63018.labels(str(n.tenant_id), "tier").inc()
    pipeline.decide(
        session,
        n,
        STEP,
        "capped",
        f"Twilio 63018 with {count} of {tier or 'unlimited'} people in 24 h and sends below pacing: "
        f"{sender}'s tier is taken as {assumed}",
    )
    await _mark_capped(session, n, sender, configured, tier, assumed, count, now)
    if policy.whatsapp.limits.at_cap == "hold":
        await _again(session, n, attempt, "pending", 0)  # its send will find the sender at the cap, and hold
        return True
    attempt.status = "undelivered"
    pipeline.decide(
        session,
        n,
        STEP,
        "at_cap",
        f"{count} of {assumed} distinct people in 24 h for {sender}; the policy sends by email",
    )
    reason = "messaging_limit" if "messaging_limit" in policy.fallback.email_on else "failed"
    await pipeline.fall_back(session, n, reason, policy=policy)
    if n.channel == "whatsapp":
        pipeline.set_status(n, "failed")
    return True


def lowered_tier(count: int, tier: int | None) -> int:
    """The tier a sender has when 63018 stops it at `count` people: the largest of Meta's tiers not above the
    count; below 250, the count itself (others open conversations on this number too)."""
    below = [t for t in TIERS if t <= count]
    assumed = below[-1] if below else count
    return assumed if tier is None else min(tier, assumed)


def _band(tier: int) -> int:
    return max([t for t in TIERS if t <= tier], default=0)


async def _recent_sends(
    session: AsyncSession, tenant_id: uuid.UUID, attempt: Attempt, rate: float
) -> tuple[int, float]:
    """(sends from this sender in the pacing window up to this one, how many make a burst)."""
    window = max(1.0, 2.0 / rate)
    at = attempt.sending_started_at or utcnow()
    recent = (
        await session.execute(
            select(func.count())
            .select_from(Attempt)
            .where(
                owned_by(Attempt, tenant_id),
                Attempt.sender == attempt.sender,
                Attempt.sending_started_at > at - timedelta(seconds=window),
                Attempt.sending_started_at <= at,
            )
        )
    ).scalar_one()
    return recent, max(2.0, BURST_SHARE * rate * window)


async def _whatsapp_attempts(session: AsyncSession, n: Notification) -> int:
    return (
        await session.execute(
            select(func.count())
            .select_from(Attempt)
            .where(owned_by(Attempt, n.tenant_id), Attempt.notification_id == n.id, Attempt.channel == "whatsapp")
        )
    ).scalar_one()


async def _again(session: AsyncSession, n: Notification, attempt: Attempt, status: str, delay_ms: int) -> None:
    """A new WhatsApp attempt for the notification (the undelivered one keeps its SID and its 63018)."""
    attempt.status = "undelivered"
    again = Attempt(
        tenant_id=n.tenant_id,
        notification_id=n.id,
        channel="whatsapp",
        kind=attempt.kind,
        provider=attempt.provider,
        sender=attempt.sender,
        status=status,
    )
    session.add(again)
    await session.flush()
    n.status = "queued"
    await outbox.enqueue(session, n.tenant_id, pipeline.SEND_WHATSAPP, again.id, delay_ms=delay_ms)


async def _mark_capped(
    session: AsyncSession,
    n: Notification,
    sender: str,
    configured: int | None,
    tier: int | None,
    assumed: int,
    count: int,
    now: datetime,
) -> None:
    """Remember the lower tier; tell the tenant once per change (a flood of 63018s is one alert)."""
    from app.endpoints.events import emit

    row = await repository(session, n.tenant_id, WhatsAppSenderLimit).one_by(sender=sender)
    # Below 250 the assumed tier is the count itself, which each 63018 of a flood lowers by one: one alert
    # per band of Meta's tiers, not one per message.
    changed = row is None or row.configured_tier != configured or _band(row.assumed_tier) != _band(assumed)
    stmt = insert_on_conflict(session, _LIMITS).values(
        id=uuid.uuid4(),
        tenant_id=n.tenant_id,
        sender=sender,
        configured_tier=configured,
        assumed_tier=assumed,
        distinct_at_cap=count,
        capped_at=now,
        created_at=now,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "sender"],
            set_={"configured_tier": configured, "assumed_tier": assumed, "distinct_at_cap": count, "capped_at": now},
        )
    )
    if changed:
        metrics.WHATSAPP_SENDERS_CAPPED.labels(str(n.tenant_id)).inc()
        data = {
            "sender": sender,
            "configured_tier": configured,
            "previous_tier": tier,
            "assumed_tier": assumed,
            "distinct_24h": count,
            "notification_id": n.id,
            "capped_at": now,
        }
        await emit(session, n.tenant_id, "whatsapp.sender_capped", data)
