"""Ambiguous WhatsApp sends: find out whether Twilio accepted one before anything is sent again.

A create that timed out, or whose connection dropped after the request was written, may have
created the Message, and Twilio's Messages API has no idempotency key. Such an attempt becomes
`unknown`, and what follows is recorded step by step as `ambiguity` decisions:

1. wait CHECK_DELAYS[0] for a status callback: it carries our attempt id and links the SID
   (app/webhooks/service.py), which settles it;
2. otherwise read the recipient's recent messages (filtered by To, newest first) and look for our
   copy: created no earlier than the send started (less CLOCK_SKEW), from our sender (From or
   MessagingServiceSid), with our body where we have one, and not already another attempt's;
3. found: the SID is linked and its status applied, as a callback would; not found: sent again;
4. the list still cannot be read after MAX_CHECKS looks: sent once more, flagged
   `possible_duplicate`; an attempt already flagged is not sent again and stays `unknown`.

An `unknown` attempt never falls back to email: the WhatsApp copy may still arrive (bounded by the
ValidityPeriod every send carries, app/notify/sending.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import providers
from app.core.logging import get_logger
from app.notify import lookups, pipeline
from app.notify.models import Attempt, Notification
from app.notify.status import MAX_TRIES, RANK, TERMINAL
from app.outbox import service as outbox
from app.webhooks.status import apply_status  # the same path a status callback takes
from channels.base import ChannelError, FailureClass, ListedMessage, ListsRecent
from tenants.credentials import service as credentials

log = get_logger("notifygw.ambiguity")
CHECK_WHATSAPP = "attempt.check_whatsapp"
# Seconds before each look. The first is the bounded wait for a status callback (Twilio sends the
# first one within seconds of accepting a message); the next ones space out a list that failed.
CHECK_DELAYS: tuple[float, ...] = (10.0, 30.0, 60.0)
# Twilio's clock against ours: a copy created this much before our send started still counts.
CLOCK_SKEW = timedelta(seconds=30)


def _bare(address: str | None) -> str:
    address = (address or "").strip()
    return address[9:] if address[:9].lower() == "whatsapp:" else address


@dataclass(frozen=True)
class Expected:
    """What our copy of the message looks like in Twilio's list."""

    to: str
    sender: str  # whatsapp:+E164, or a Messaging Service SID (MG...)
    body: str | None  # None when Twilio renders it (a Content template): not compared
    started_at: datetime


def matches(message: ListedMessage, expected: Expected) -> bool:
    """True when `message` can be our copy. The Message resource has no ContentSid, and date_sent
    stays null while queued, so date_created, sender and body are what can be compared."""
    if not message.direction.startswith("outbound") or _bare(message.to) != _bare(expected.to):
        return False
    if message.date_created is None or message.date_created < expected.started_at - CLOCK_SKEW:
        return False
    if expected.sender.startswith("MG"):
        if message.messaging_service_sid != expected.sender:
            return False
    elif _bare(message.from_) != _bare(expected.sender):
        return False
    return expected.body is None or (message.body or "").strip() == expected.body.strip()


def find_copy(listed: Iterable[ListedMessage], expected: Expected, taken: set[str]) -> ListedMessage | None:
    """The earliest message that matches and is not already another attempt's (`taken` SIDs)."""
    candidates = [m for m in listed if m.sid not in taken and matches(m, expected)]
    if not candidates:
        return None
    return min(candidates, key=lambda m: m.date_created)  # type: ignore[arg-type,return-value]


def _delay_ms(check: int) -> int:
    return int(CHECK_DELAYS[min(check, len(CHECK_DELAYS) - 1)] * 1000)


def max_checks() -> int:
    return len(CHECK_DELAYS)


async def after_ambiguous_send(session: AsyncSession, n: Notification, attempt: Attempt, exc: ChannelError) -> None:
    """The send's answer was lost (rows locked by the caller): schedule the check, send nothing."""
    if attempt.provider_message_id:  # a status callback linked it while we waited for the answer
        pipeline.decide(
            session,
            n,
            "ambiguity",
            "accepted",
            f"{exc.message}, but a status callback had named this attempt: Twilio accepted it as "
            f"{attempt.provider_message_id}",
        )
        return
    _mark_unknown(attempt, exc.message)
    pipeline.decide(
        session, n, "ambiguity", "unknown", f"{exc.message}: Twilio may have accepted it; checking before any resend"
    )
    pipeline.sync_status(n, attempt)
    await outbox.enqueue(session, n.tenant_id, CHECK_WHATSAPP, attempt.id, delay_ms=_delay_ms(0))


async def after_worker_lost(session: AsyncSession, attempt: Attempt) -> None:
    """An attempt left `sending` with no SID past the grace period (its worker died mid-call): the same
    ambiguity. The grace period was the wait for a callback, so the list is read at once. Only the
    attempt is locked here (by the sweep); the check job locks both rows and moves the notification."""
    n = await lookups.notification_of(session, attempt)
    if n is None:
        return
    _mark_unknown(attempt, "the worker was lost during the send")
    pipeline.decide(
        session,
        n,
        "ambiguity",
        "unknown",
        "the worker was lost during the send and no status callback came: checking before any resend",
    )
    await outbox.enqueue(session, attempt.tenant_id, CHECK_WHATSAPP, attempt.id)


def _mark_unknown(attempt: Attempt, why: str) -> None:
    attempt.status, attempt.checks = "unknown", 0
    attempt.error_class, attempt.error_code, attempt.error_message = "ambiguous", None, why[:2000]
    attempt.error_more_info = None


async def check(session: AsyncSession, n: Notification, attempt: Attempt) -> bool:
    """One look for an `unknown` attempt (rows locked by lookups.attempt_job). False when the look was
    rescheduled (the outbox row stays pending), True when this job is done."""
    if attempt.status != "unknown" or attempt.provider_message_id:
        return True  # settled meanwhile: a status callback (which records its own decision), or a resend
    if attempt.checks >= max_checks():
        return True  # given up already: this is a duplicate of the last look's job (the outbox sweep)
    address, _ = await pipeline.whatsapp_address(session, n)
    row = await credentials.find_twilio(session, n.tenant_id)
    started = attempt.sending_started_at or attempt.created_at
    expected = Expected(
        to=address or "",
        sender=attempt.sender or "",
        body=None if attempt.kind == "template" else (n.text or ""),
        started_at=started,
    )
    await session.commit()  # no row lock is held across the provider call
    try:
        if row is None or address is None:
            raise ChannelError(FailureClass.BAD_CREDENTIALS, "no Twilio credentials or address to check with")
        channel: ListsRecent = providers.twilio().channel(credentials.twilio_secrets(row))
        listed = await channel.recent_messages(address, since=started - CLOCK_SKEW)
        error = None
    except ChannelError as exc:
        listed, error = [], exc
    await pipeline.lock(session, n, attempt)
    if attempt.status != "unknown" or attempt.provider_message_id:
        return True  # a callback got here while the list was read
    if error is not None:
        return await _check_failed(session, n, attempt, error)
    taken = await lookups.taken_message_ids(session, n.tenant_id, "twilio", [m.sid for m in listed])
    copy = find_copy(listed, expected, taken)
    if copy is not None:
        await _link(session, n, attempt, copy)
        return True
    await _not_found(session, n, attempt, expected)
    return True


async def _link(session: AsyncSession, n: Notification, attempt: Attempt, copy: ListedMessage) -> None:
    attempt.provider_message_id = copy.sid
    attempt.error_class = attempt.error_code = attempt.error_message = attempt.error_more_info = None
    pipeline.decide(
        session,
        n,
        "ambiguity",
        "accepted",
        f"found in Twilio's list of messages to {copy.to} as {copy.sid} ({copy.status}): not sent again",
    )
    # Twilio's own `sending` ranks no higher than `unknown`: the message exists, so it is at least queued.
    status = copy.status if copy.status in TERMINAL or RANK.get(copy.status, -1) > RANK["unknown"] else "queued"
    await apply_status(session, n, attempt, status, copy.error_code, copy.error_message, source="ambiguity_check")


async def _not_found(session: AsyncSession, n: Notification, attempt: Attempt, expected: Expected) -> None:
    where = f"no copy in Twilio's list of messages to {expected.to} since {expected.started_at:%H:%M:%S} UTC"
    if attempt.tries >= MAX_TRIES:  # known not accepted, and the tries are spent: a definite failure
        pipeline.decide(session, n, "ambiguity", "not_found", f"{where}; {attempt.tries} tries spent")
        await pipeline.whatsapp_failed(
            session,
            n,
            attempt,
            FailureClass.PERMANENT,
            None,
            f"Twilio did not accept the message in {attempt.tries} tries",
        )
        return
    attempt.status = "pending"
    pipeline.decide(session, n, "ambiguity", "not_found", f"{where}: sending again")
    pipeline.sync_status(n, attempt)
    await outbox.enqueue(session, n.tenant_id, pipeline.SEND_WHATSAPP, attempt.id)


async def _check_failed(session: AsyncSession, n: Notification, attempt: Attempt, error: ChannelError) -> bool:
    attempt.checks += 1
    log.info("ambiguity check failed", attempt_id=str(attempt.id), failure=error.failure.value, check=attempt.checks)
    if attempt.checks < max_checks():
        pipeline.decide(
            session,
            n,
            "ambiguity",
            "check_failed",
            f"Twilio's list could not be read ({error.message}); look {attempt.checks} of {max_checks()}",
        )
        await outbox.enqueue(session, n.tenant_id, CHECK_WHATSAPP, attempt.id, delay_ms=_delay_ms(attempt.checks))
        return False
    if not attempt.possible_duplicate and attempt.tries < MAX_TRIES:
        attempt.status, attempt.possible_duplicate = "pending", True
        pipeline.decide(
            session,
            n,
            "ambiguity",
            "unknown_resent",
            f"whether Twilio accepted it is unknown after {attempt.checks} looks ({error.message}): "
            "sent once more, flagged possible_duplicate",
        )
        pipeline.sync_status(n, attempt)
        await outbox.enqueue(session, n.tenant_id, pipeline.SEND_WHATSAPP, attempt.id)
        return True
    pipeline.decide(
        session,
        n,
        "ambiguity",
        "unknown",
        f"still unknown after {attempt.checks} looks ({error.message}) and the one extra send is spent: "
        "not sent again, and no email while the WhatsApp copy may still arrive",
    )
    pipeline.sync_status(n, attempt)
    return True
