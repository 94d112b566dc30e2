"""Processing stored provider events: status callbacks, inbound messages, SendGrid events.

Idempotent: an event already processed is skipped, so `notifygw replay` changes nothing that was
already applied.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utcnow
from app.core.logging import get_logger
from app.endpoints.events import consent_data, emit, message_data
from app.notify import pipeline
from app.notify.models import Attempt, Notification, ProviderEvent
from app.notify.status import TERMINAL, advances
from app.outbox import service as outbox
from app.webhooks import keywords
from app.webhooks.ingest import first
from app.webhooks.models import InboundMessage, RawEvent
from app.webhooks.status import apply_status
from channels.phone import PhoneError, parse_phone, strip_whatsapp
from tenants.audit.service import SystemActor
from tenants.contacts import identifiers, service as contacts
from tenants.contacts.identifiers import IdentifierError
from tenants.routing.service import get_policy

log = get_logger("notifygw.webhooks")
KEYWORD_ACTOR = SystemActor("inbound_keyword")


async def claim(session: AsyncSession, event_id: uuid.UUID) -> RawEvent | None:
    """Mark the event processed in this transaction and load it, in one statement; None when it is
    gone or already processed. A failure rolls the mark back with everything else."""
    stmt = (update(RawEvent).where(RawEvent.id == event_id, RawEvent.processed_at.is_(None))
            .values(processed_at=utcnow()).returning(RawEvent))
    return (await session.execute(stmt)).scalar_one_or_none()


async def process(session: AsyncSession, event: RawEvent) -> None:
    """Apply one claimed event. Each kind checks its own marker of having been applied (a provider
    event or inbound message row), so a replay of an applied event is a no-op."""
    if not await _already_applied(session, event):
        handler = {"status": _status, "inbound": _inbound, "sendgrid": _sendgrid}[event.kind]
        await handler(session, event)


async def _already_applied(session: AsyncSession, event: RawEvent) -> bool:
    if event.kind == "inbound":
        sid = first(event.payload["form"], "MessageSid") or first(event.payload["form"], "SmsMessageSid") or ""
        marker = select(InboundMessage.id).where(InboundMessage.tenant_id == event.tenant_id, InboundMessage.message_sid == sid)
    else:
        marker = select(ProviderEvent.id).where(ProviderEvent.tenant_id == event.tenant_id, ProviderEvent.raw_event_id == event.id)
    return (await session.execute(marker.limit(1))).first() is not None


# --- Twilio status callbacks ------------------------------------------------------------------

async def _find_attempt(session: AsyncSession, tenant_id: uuid.UUID, attempt_ref: str | None, sid: str) -> Attempt | None:
    if attempt_ref:
        try:
            by_id = (await session.execute(select(Attempt).where(
                Attempt.tenant_id == tenant_id, Attempt.id == uuid.UUID(attempt_ref)))).scalar_one_or_none()
        except ValueError:
            by_id = None
        if by_id is not None and by_id.provider_message_id in (None, sid):
            return by_id
    return (await session.execute(select(Attempt).where(
        Attempt.tenant_id == tenant_id, Attempt.provider == "twilio", Attempt.provider_message_id == sid))).scalar_one_or_none()


async def _status(session: AsyncSession, event: RawEvent) -> None:
    form, query = event.payload["form"], event.payload.get("query", [])
    sid = first(form, "MessageSid") or ""
    status = (first(form, "MessageStatus") or first(form, "SmsStatus") or "").lower()
    code = first(form, "ErrorCode") or None
    attempt = await _find_attempt(session, event.tenant_id, first(query, "a"), sid)
    if attempt is None:  # sent from the console, or by another system: kept, not an error
        event.orphan = True
    # Statuses only move forward, so what cannot advance the status read here cannot advance a newer one
    # either: recorded in the timeline without taking the locks (the `queued` echo of every send).
    if attempt is None or (attempt.provider_message_id is not None and not advances(attempt.status, status)):
        session.add(ProviderEvent(tenant_id=event.tenant_id, attempt_id=attempt.id if attempt else None,
                                  raw_event_id=event.id, provider="twilio", status=status, error_code=code,
                                  applied=False))
        return
    n = await session.get(Notification, attempt.notification_id)
    assert n is not None and n.tenant_id == event.tenant_id
    await pipeline.lock(session, n, attempt)
    if attempt.provider_message_id is None:
        # The worker died after Twilio accepted the message: the callback carries our attempt id and links the SID.
        attempt.provider_message_id = sid
    message = first(form, "ErrorMessage") or first(form, "ChannelStatusMessage")
    await apply_status(session, n, attempt, status, code, message, source="callback", raw_event_id=event.id)


# --- Twilio inbound messages ------------------------------------------------------------------

def _identity(form: list[list[str]], default_region: str) -> tuple[identifiers.Identifier | None, identifiers.Identifier | None]:
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
            try:
                phone = identifiers.Identifier("phone", parse_phone(candidate, default_region))
            except PhoneError:
                pass
    return phone, bsuid


def _sender_address(to: str | None) -> str | None:
    if not to:
        return None
    bare = strip_whatsapp(to)
    return f"whatsapp:{bare}" if bare else None


async def _inbound(session: AsyncSession, event: RawEvent) -> None:
    form = event.payload["form"]
    tenant_id = event.tenant_id
    policy = await get_policy(session, tenant_id)
    phone, bsuid = _identity(form, policy.default_country)
    contact = await contacts.link_inbound(session, tenant_id, phone=phone, bsuid=bsuid, profile_name=first(form, "ProfileName"),
                                          at=event.received_at)
    sid = first(form, "MessageSid") or first(form, "SmsMessageSid") or ""
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
        id=uuid.uuid4(), tenant_id=tenant_id, contact_id=contact.id if contact else None, message_sid=sid,
        from_address=first(form, "From"), to_address=first(form, "To"), body=body, media=media,
        profile_name=first(form, "ProfileName"), wa_id=first(form, "WaId"), button_payload=first(form, "ButtonPayload"),
        keyword=keyword, received_at=received_at)
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


async def _opt_out(session: AsyncSession, tenant_id: uuid.UUID, contact: Any, sid: str, policy: Any,
                   address: str | None) -> None:
    _, created = await contacts.suppress(session, tenant_id, contact, channel="whatsapp", reason="opted_out",
                                         source="inbound_keyword", evidence=sid, actor=KEYWORD_ACTOR)
    await contacts.record_consent(session, tenant_id, contact, channel="whatsapp", status="withdrawn",
                                  source="inbound_keyword", proof=None, captured_at=None, evidence=sid, actor=KEYWORD_ACTOR)
    await emit(session, tenant_id, "contact.opted_out", consent_data(
        contact_id=contact.id, channel="whatsapp", address=address, source="inbound_keyword", evidence=sid))
    text = policy.inbound.opt_out_confirmation
    if created and text:
        n = Notification(tenant_id=tenant_id, contact_id=contact.id, recipient={}, template_key=None, variables={},
                         text=text, media_url=None, channels=["whatsapp"], metadata_={"reply_to": sid},
                         environment="live", status="accepted", purpose="opt_out_confirmation")
        session.add(n)
        await session.flush()
        await outbox.enqueue(session, tenant_id, "notification.route", n.id)


async def _opt_in(session: AsyncSession, tenant_id: uuid.UUID, contact: Any, sid: str, address: str | None) -> None:
    row = await contacts.suppression(session, tenant_id, contact.id, "whatsapp")
    if row is not None:
        await contacts.lift(session, tenant_id, row, actor=KEYWORD_ACTOR)
    await contacts.record_consent(session, tenant_id, contact, channel="whatsapp", status="granted",
                                  source="inbound_keyword", proof=None, captured_at=None, evidence=sid, actor=KEYWORD_ACTOR)
    await emit(session, tenant_id, "contact.opted_in", consent_data(
        contact_id=contact.id, channel="whatsapp", address=address, source="inbound_keyword", evidence=sid))


# --- SendGrid events --------------------------------------------------------------------------

SENDGRID_STATUS = {"processed": "sent", "delivered": "delivered", "bounce": "failed", "dropped": "failed"}


async def _sendgrid(session: AsyncSession, event: RawEvent) -> None:
    data = event.payload["event"]
    kind = str(data.get("event", ""))
    attempt = None
    attempt_ref = data.get("notifygw_attempt_id")
    if attempt_ref:
        try:
            attempt = (await session.execute(select(Attempt).where(
                Attempt.tenant_id == event.tenant_id, Attempt.id == uuid.UUID(str(attempt_ref))))).scalar_one_or_none()
        except ValueError:
            attempt = None
    if attempt is None and data.get("sg_message_id"):
        message_id = str(data["sg_message_id"]).split(".", 1)[0]
        attempt = (await session.execute(select(Attempt).where(
            Attempt.tenant_id == event.tenant_id, Attempt.provider == "sendgrid",
            Attempt.provider_message_id == message_id))).scalar_one_or_none()
    status = SENDGRID_STATUS.get(kind)
    if attempt is not None:
        n = await session.get(Notification, attempt.notification_id)
        assert n is not None
        await pipeline.lock(session, n, attempt)  # before any insert that references the attempt
    provider_event = ProviderEvent(tenant_id=event.tenant_id, attempt_id=attempt.id if attempt else None, raw_event_id=event.id,
                                   provider="sendgrid", status=kind, error_code=str(data.get("status") or "") or None, applied=False)
    session.add(provider_event)
    if attempt is None:
        event.orphan = True
        return
    if kind in ("bounce", "dropped"):
        await _suppress_email(session, event.tenant_id, str(data.get("email") or ""), kind, str(data.get("sg_event_id") or ""))
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
    await contacts.suppress(session, tenant_id, contact, channel="email", reason=kind, source="sendgrid_event",
                            evidence=evidence or None, actor=SystemActor("sendgrid_event"))
