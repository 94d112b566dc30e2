"""Processing stored provider events: status callbacks, inbound messages, SendGrid events.

Idempotent: an event already processed is skipped, so `notifygw replay` changes nothing that was
already applied.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utcnow
from app.core.logging import get_logger
from app.core.repository import owned_by
from app.endpoints.events import consent_data, emit, message_data
from app.notify import lookups, pipeline
from app.notify.models import Attempt, Notification, ProviderEvent
from app.notify.status import TERMINAL, advances
from app.outbox import service as outbox
from app.people import service as people
from app.webhooks import keywords
from app.webhooks.fields import clip, fit_identifier, fits
from app.webhooks.ingest import first
from app.webhooks.models import InboundMessage, RawEvent
from app.webhooks.status import apply_status
from channels.phone import PhoneError, parse_phone, strip_whatsapp
from tenants.accounts.models import Tenant
from tenants.audit.service import SystemActor
from tenants.contacts import identifiers
from tenants.contacts import service as contacts
from tenants.contacts.identifiers import IdentifierError
from tenants.contacts.models import ConsentEntry, ConversationWindow, Suppression
from tenants.routing.service import get_policy

log = get_logger("notifygw.webhooks")
KEYWORD_ACTOR = SystemActor("inbound_keyword")


async def claim(session: AsyncSession, event_id: uuid.UUID) -> RawEvent | None:
    """Mark the event processed in this transaction and load it, in one statement; None when it is
    gone or already processed. A failure rolls the mark back with everything else."""
    stmt = (
        update(RawEvent)
        .where(RawEvent.id == event_id, RawEvent.processed_at.is_(None))
        .values(processed_at=utcnow())
        .returning(RawEvent)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def claim_and_complete(session: AsyncSession, kind: str, event_id: uuid.UUID) -> tuple[RawEvent | None, bool]:
    """What a processing job starts with: (the claimed event, whether it was applied before), with its
    outbox row completed in the same transaction. On PostgreSQL one statement does all three (the outbox
    update rides as a CTE, the applied marker of a status or SendGrid event is an EXISTS); SQLite runs them
    one by one. The marker of an inbound message is its own query (`already_applied`)."""
    if session.get_bind().dialect.name != "postgresql":
        event = await claim(session, event_id)
        await outbox.complete(session, kind, event_id)
        return event, event is not None and await already_applied(session, event)
    row = (
        await session.execute(_claim_statement(kind), {"claimed_event": event_id, "claimed_at": utcnow()})
    ).one_or_none()
    if row is None:
        return None, False
    event, applied = row
    if event.kind == "inbound":
        applied = await already_applied(session, event)
    return event, bool(applied)


# Whether a claimed status or SendGrid event was applied before: its provider event, read in the claim's
# RETURNING (an inbound message's marker is its row by SID: `already_applied`).
APPLIED_MARKER: Any = (
    select(ProviderEvent.id)
    .where(owned_by(ProviderEvent, RawEvent.tenant_id), ProviderEvent.raw_event_id == RawEvent.id)
    .exists()
)


@functools.cache
def _claim_statement(kind: str) -> Any:
    """claim_and_complete's statement for one job kind, built once (app/notify/lookups.py says why)."""
    event: Any = bindparam("claimed_event")
    now: Any = bindparam("claimed_at")
    return (
        update(RawEvent)
        .where(RawEvent.id == event, RawEvent.processed_at.is_(None))
        .values(processed_at=now)
        .returning(RawEvent, APPLIED_MARKER.label("applied"))
        .add_cte(outbox.completion(kind, event, now))
    )


async def process(session: AsyncSession, event: RawEvent) -> None:
    """Apply one claimed event. Each kind checks its own marker of having been applied (a provider
    event or inbound message row), so a replay of an applied event is a no-op."""
    if not await already_applied(session, event):
        await apply(session, event)


async def apply(session: AsyncSession, event: RawEvent, find: FindAttempt | None = None) -> None:
    """Apply one claimed event known not to have been applied yet. `find` answers a status event's lookup."""
    if event.kind == "status":
        await _status(session, event, find or find_twilio_attempt)
    else:
        await {"inbound": _inbound, "sendgrid": _sendgrid}[event.kind](session, event)


async def already_applied(session: AsyncSession, event: RawEvent) -> bool:
    if event.kind == "inbound":
        sid = _inbound_sid(event.payload["form"])
        marker = select(InboundMessage.id).where(
            owned_by(InboundMessage, event.tenant_id), InboundMessage.message_sid == sid
        )
    else:
        marker = select(ProviderEvent.id).where(
            owned_by(ProviderEvent, event.tenant_id), ProviderEvent.raw_event_id == event.id
        )
    return (await session.execute(marker.limit(1))).first() is not None


# --- Twilio status callbacks ------------------------------------------------------------------


# (session, tenant, our attempt id from the callback URL, Twilio's SID) -> (attempt, notification), both
# locked, or None: lookups.find_attempt's question, which the drain answers from the rows it read in one go.
FindAttempt = Callable[[AsyncSession, uuid.UUID, object, str], Awaitable["tuple[Attempt, Notification] | None"]]


async def find_twilio_attempt(
    session: AsyncSession, tenant_id: uuid.UUID, attempt_ref: object, sid: str
) -> tuple[Attempt, Notification] | None:
    return await lookups.find_attempt(
        session, tenant_id, "twilio", attempt_ref=attempt_ref, provider_id=sid, same_message=True
    )


def status_names(event: RawEvent) -> tuple[object, str | None]:
    """(the attempt id in the callback's URL, the SID when it can be one of Twilio's) of a status event."""
    sid = first(event.payload["form"], "MessageSid") or ""
    # A SID longer than the column is no SID of Twilio's: it matches nothing and links nothing (an orphan).
    return first(event.payload.get("query", []), "a"), sid if fits(sid, Attempt.provider_message_id) else None


async def _status(session: AsyncSession, event: RawEvent, find: FindAttempt) -> None:
    form = event.payload["form"]
    sid = first(form, "MessageSid") or ""
    status = clip((first(form, "MessageStatus") or first(form, "SmsStatus") or "").lower(), ProviderEvent.status) or ""
    code = clip(first(form, "ErrorCode") or None, ProviderEvent.error_code)
    attempt_ref, real_sid = status_names(event)
    found = await find(session, event.tenant_id, attempt_ref, sid) if real_sid else None
    if found is None:  # sent from the console, or by another system: kept, not an error
        event.orphan = True
    # Statuses only move forward, and the rows were read with their locks: what cannot advance the status
    # is recorded in the timeline and nothing else (the `queued` echo of every send).
    if found is None or (found[0].provider_message_id is not None and not advances(found[0].status, status)):
        session.add(
            ProviderEvent(
                tenant_id=event.tenant_id,
                attempt_id=found[0].id if found else None,
                raw_event_id=event.id,
                provider="twilio",
                status=status,
                error_code=code,
                applied=False,
            )
        )
        return
    attempt, n = found
    if attempt.provider_message_id is None:
        # The worker died after Twilio accepted the message: the callback carries our attempt id and links the SID.
        if attempt.status == "unknown":
            pipeline.decide(
                session,
                n,
                "ambiguity",
                "accepted",
                f"a status callback names this attempt: Twilio accepted it as {sid}",
            )
            attempt.error_class = attempt.error_code = attempt.error_message = attempt.error_more_info = None
        attempt.provider_message_id = sid
    message = first(form, "ErrorMessage") or first(form, "ChannelStatusMessage")
    # Not flushed here: the drain applies a batch and flushes once (one UPDATE per attempt, whatever its
    # number of statuses in the batch); a single event is flushed by its commit.
    await apply_status(
        session, n, attempt, status, code, message, source="callback", raw_event_id=event.id, flush=False
    )


# --- Twilio inbound messages ------------------------------------------------------------------


def _identity(
    form: list[list[str]], default_region: str
) -> tuple[identifiers.Identifier | None, identifiers.Identifier | None]:
    """(phone, bsuid) from every shape Twilio sends: From=whatsapp:+E164, From=+E164 (prefixless),
    From=whatsapp:<BSUID> (a username user hiding the number), ExternalUserId=whatsapp:<BSUID>."""
    phone = bsuid = None
    sender = strip_whatsapp(first(form, "From") or "")
    # Captured payloads name it ExternalUserId; Twilio's changelog says ExternalUserIdentifier: read both.
    external = first(form, "ExternalUserId") or first(form, "ExternalUserIdentifier")
    for candidate in (external, sender):
        if candidate and identifiers.is_bsuid(candidate) and bsuid is None:
            bsuid = identifiers.bsuid(candidate)
    wa_id = first(form, "WaId")
    for candidate in (sender if sender.startswith("+") else None, f"+{wa_id}" if wa_id and wa_id.isdigit() else None):
        if candidate and phone is None:
            with contextlib.suppress(PhoneError):
                phone = identifiers.Identifier("phone", parse_phone(candidate, default_region))
    return phone, bsuid


def _sender_address(to: str | None) -> str | None:
    if not to:
        return None
    bare = strip_whatsapp(to)
    address = f"whatsapp:{bare}" if bare else None
    return address if fits(address, ConversationWindow.sender) else None  # too long to be one of ours


def _inbound_sid(form: list[list[str]]) -> str:
    return fit_identifier(first(form, "MessageSid") or first(form, "SmsMessageSid") or "", InboundMessage.message_sid)


async def _inbound(session: AsyncSession, event: RawEvent) -> None:
    form = event.payload["form"]
    tenant_id = event.tenant_id
    policy = await get_policy(session, tenant_id)
    phone, bsuid = _identity(form, policy.default_country)
    profile_name = clip(first(form, "ProfileName"), InboundMessage.profile_name)
    contact = await people.link_inbound(
        session, tenant_id, phone=phone, bsuid=bsuid, profile_name=profile_name, at=event.received_at
    )
    sid = _inbound_sid(form)
    body = first(form, "Body")
    keyword = keywords.match(body, policy.inbound.stop_words, policy.inbound.start_words) if contact else None
    media = []
    try:
        count = min(int(first(form, "NumMedia") or 0), 10)
    except ValueError:
        count = 0
    for i in range(count):
        media.append({"url": first(form, f"MediaUrl{i}"), "content_type": first(form, f"MediaContentType{i}")})
    received_at = event.received_at
    message = InboundMessage(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        contact_id=contact.id if contact else None,
        message_sid=sid,
        from_address=clip(first(form, "From"), InboundMessage.from_address),
        to_address=clip(first(form, "To"), InboundMessage.to_address),
        body=body,
        media=media,
        profile_name=profile_name,
        wa_id=clip(first(form, "WaId"), InboundMessage.wa_id),
        button_payload=first(form, "ButtonPayload"),
        keyword=keyword,
        received_at=received_at,
    )
    session.add(message)
    if keyword is None:
        await emit(session, tenant_id, "message.received", message_data(message))
    if contact is None:
        log.info("inbound message names no one", message_sid=sid)
        return
    sender = _sender_address(first(form, "To"))
    if sender:
        await contacts.touch_window(session, tenant_id, contact.id, sender, received_at)
    address = strip_whatsapp(first(form, "From") or "") or None
    if keyword == "stop":
        await _opt_out(session, tenant_id, contact, sid, policy, address)
    elif keyword == "start":
        await _opt_in(session, tenant_id, contact, sid, address)


async def _opt_out(
    session: AsyncSession, tenant_id: uuid.UUID, contact: Any, sid: str, policy: Any, address: str | None
) -> None:
    _, created = await contacts.suppress(
        session,
        tenant_id,
        contact,
        channel="whatsapp",
        reason="opted_out",
        source="inbound_keyword",
        evidence=sid,
        actor=KEYWORD_ACTOR,
    )
    await contacts.record_consent(
        session,
        tenant_id,
        contact,
        channel="whatsapp",
        status="withdrawn",
        source="inbound_keyword",
        proof=None,
        captured_at=None,
        evidence=clip(sid, ConsentEntry.evidence),
        actor=KEYWORD_ACTOR,
    )
    await emit(
        session,
        tenant_id,
        "contact.opted_out",
        consent_data(
            contact_id=contact.id, channel="whatsapp", address=address, source="inbound_keyword", evidence=sid
        ),
    )
    text = policy.inbound.opt_out_confirmation
    # A suspended tenant sends nothing, and a confirmation held back would arrive long after the STOP:
    # the opt-out is recorded, the confirmation is not created at all.
    if created and text and await _tenant_status(session, tenant_id) == "active":
        n = Notification(
            tenant_id=tenant_id,
            contact_id=contact.id,
            recipient={},
            template_key=None,
            variables={},
            text=text,
            media_url=None,
            channels=["whatsapp"],
            metadata_={"reply_to": sid},
            environment="live",
            status="accepted",
            purpose="opt_out_confirmation",
        )
        session.add(n)
        await session.flush()
        await outbox.enqueue(session, tenant_id, "notification.route", n.id)


async def _opt_in(session: AsyncSession, tenant_id: uuid.UUID, contact: Any, sid: str, address: str | None) -> None:
    row = await contacts.suppression(session, tenant_id, contact.id, "whatsapp")
    if row is not None:
        await contacts.lift(session, tenant_id, row, actor=KEYWORD_ACTOR)
    await contacts.record_consent(
        session,
        tenant_id,
        contact,
        channel="whatsapp",
        status="granted",
        source="inbound_keyword",
        proof=None,
        captured_at=None,
        evidence=clip(sid, ConsentEntry.evidence),
        actor=KEYWORD_ACTOR,
    )
    await emit(
        session,
        tenant_id,
        "contact.opted_in",
        consent_data(
            contact_id=contact.id, channel="whatsapp", address=address, source="inbound_keyword", evidence=sid
        ),
    )


async def _tenant_status(session: AsyncSession, tenant_id: uuid.UUID) -> str | None:
    return (await session.execute(select(Tenant.status).where(Tenant.id == tenant_id))).scalar_one_or_none()


# --- SendGrid events --------------------------------------------------------------------------

SENDGRID_STATUS = {"processed": "sent", "delivered": "delivered", "bounce": "failed", "dropped": "failed"}


async def _sendgrid(session: AsyncSession, event: RawEvent) -> None:
    data = event.payload["event"]
    kind = clip(str(data.get("event", "")), ProviderEvent.status) or ""
    message_id = str(data.get("sg_message_id") or "").split(".", 1)[0]
    # An id longer than the column is none of ours: looked up, it could only miss (an orphan).
    found = await lookups.find_attempt(
        session,
        event.tenant_id,
        "sendgrid",
        attempt_ref=data.get("notifygw_attempt_id"),
        provider_id=message_id if fits(message_id, Attempt.provider_message_id) else None,
    )
    status = SENDGRID_STATUS.get(kind)
    provider_event = ProviderEvent(
        tenant_id=event.tenant_id,
        attempt_id=found[0].id if found else None,
        raw_event_id=event.id,
        provider="sendgrid",
        status=kind,
        error_code=clip(str(data.get("status") or "") or None, ProviderEvent.error_code),
        applied=False,
    )
    session.add(provider_event)
    if found is None:
        event.orphan = True
        return
    attempt, n = found
    if kind in ("bounce", "dropped"):
        await _suppress_email(
            session,
            event.tenant_id,
            str(data.get("email") or ""),
            kind,
            clip(str(data.get("sg_event_id") or ""), Suppression.evidence) or "",
        )
    if status and advances(attempt.status, status):
        provider_event.applied = True
        attempt.status = status
        if status in TERMINAL:
            attempt.error_class = "bounced" if kind == "bounce" else "dropped"
            attempt.error_message = str(data.get("reason") or kind)[:2000]
            pipeline.decide(session, n, "outcome", kind, attempt.error_message)
        pipeline.sync_status(n, attempt)


async def _suppress_email(session: AsyncSession, tenant_id: uuid.UUID, address: str, kind: str, evidence: str) -> None:
    try:
        ident = identifiers.email(address)
    except IdentifierError:
        return
    contact = await contacts.resolve(session, tenant_id, [ident])
    await contacts.suppress(
        session,
        tenant_id,
        contact,
        channel="email",
        reason=kind,
        source="sendgrid_event",
        evidence=evidence or None,
        actor=SystemActor("sendgrid_event"),
    )
