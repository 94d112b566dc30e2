"""Contacts as a whole: list and read them, and erase one on request.

The contact model, lookups, merging, consent, suppressions and windows live in tenants.contacts;
this package reads them together for the API and owns erasure, which reaches into every table that
holds a person's clear data (inbound messages, notifications, their attempts and decisions, the
stored provider callbacks and the events queued for the tenant's own webhook endpoints).

Erasure keeps what stops us messaging the person again, and nothing that identifies them in clear:
identifier rows keep their keyed hash (so a later request naming the same phone or email still
finds the contact and its suppression), suppression rows are untouched, and consent entries keep
channel, status, source and time but lose proof, IP and user agent.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Sequence

from sqlalchemy import or_, select, type_coerce, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utcnow
from app.core.pagination import paginate
from app.notify import pipeline
from app.notify.models import Attempt, Decision, Notification
from app.webhooks.models import InboundMessage, RawEvent, WebhookDelivery
from tenants.audit import service as audit
from tenants.contacts.identifiers import Identifier
from tenants.contacts.models import Contact, ContactIdentifier, ConsentEntry, ConversationWindow, Suppression
from tenants.contacts.repository import (
    ConsentRepository,
    ContactRepository,
    IdentifierRepository,
    SuppressionRepository,
    WindowRepository,
)
from tenants.contacts.service import WINDOW

CHANNELS = ("whatsapp", "email")
ERASED = "[erased]"
# Provider callback fields that name no one: kept when a stored callback is redacted, so the event
# still says which message and status it was about.
KEEP_TWILIO_FIELDS = frozenset({
    "MessageSid", "SmsSid", "SmsMessageSid", "AccountSid", "MessagingServiceSid", "MessageStatus", "SmsStatus",
    "ErrorCode", "ApiVersion", "NumMedia", "NumSegments", "MessageType", "ChannelPrefix", "ChannelInstallSid"})
KEEP_SENDGRID_FIELDS = frozenset({
    "event", "sg_event_id", "sg_message_id", "timestamp", "type", "bounce_classification", "status",
    "notifygw_attempt_id", "notifygw_notification_id"})
# Outbound webhook events to the tenant's own apps (app/endpoints): `data` fields that name no one.
KEEP_EVENT_DATA = frozenset({"id", "message_sid", "contact_id", "to", "channel", "source", "evidence", "status",
                             "template", "received_at", "created_at"})
_SID_FIELDS = ("MessageSid", "SmsSid", "SmsMessageSid")
_ADDRESS_FIELDS = ("From", "To", "WaId", "ExternalUserId", "ChannelToAddress", "OriginalRepliedMessageSender")
IN_FLIGHT_NOTIFICATIONS = ("accepted", "queued")
UNSENT_ATTEMPTS = ("pending", "retry_wait")
_CHUNK = 100


# --- reading ------------------------------------------------------------------------------------

@dataclass
class ContactView:
    contact: Contact
    identifiers: Sequence[ContactIdentifier]
    consent: dict[str, ConsentEntry | None]
    suppressions: dict[str, Suppression | None]
    windows: Sequence[ConversationWindow]


async def matching_contact(session: AsyncSession, tenant_id: uuid.UUID, idents: Iterable[Identifier]) -> uuid.UUID | None:
    """The one contact every identifier names (current or history); None if any is unknown or they disagree."""
    repo = IdentifierRepository(session, tenant_id)
    found: set[uuid.UUID] = set()
    for ident in idents:
        row = await repo.lookup(ident)
        if row is None:
            return None
        found.add(row.contact_id)
    return found.pop() if len(found) == 1 else None


@dataclass
class ContactPageView:
    rows: Sequence[Contact]
    identifiers: dict[uuid.UUID, list[ContactIdentifier]]
    suppressions: dict[uuid.UUID, list[Suppression]]
    window_open: set[uuid.UUID]


async def page(session: AsyncSession, tenant_id: uuid.UUID, *, only: uuid.UUID | None, filtered: bool,
               cursor: str | None, limit: int) -> ContactPageView:
    """One page of contacts, newest first, with identifiers, suppressions and open windows (three queries, not 3n)."""
    repo = ContactRepository(session, tenant_id)
    stmt = repo.statement()
    if filtered:
        stmt = stmt.where(Contact.id == only) if only else stmt.where(Contact.id.is_(None))  # nobody
    rows = await repo.all(paginate(stmt, Contact, cursor, limit))
    ids = [c.id for c in rows]
    view = ContactPageView(rows, {i: [] for i in ids}, {i: [] for i in ids}, set())
    if ids:
        id_repo = IdentifierRepository(session, tenant_id)
        for row in await id_repo.all(id_repo.statement().where(ContactIdentifier.contact_id.in_(ids))
                                     .order_by(ContactIdentifier.created_at)):
            view.identifiers[row.contact_id].append(row)
        sup_repo = SuppressionRepository(session, tenant_id)
        for sup in await sup_repo.all(sup_repo.statement().where(Suppression.contact_id.in_(ids))
                                      .order_by(Suppression.channel)):
            view.suppressions[sup.contact_id].append(sup)
        win_repo = WindowRepository(session, tenant_id)
        for win in await win_repo.all(win_repo.statement().where(ConversationWindow.contact_id.in_(ids),
                                                                 ConversationWindow.last_inbound_at > utcnow() - WINDOW)):
            view.window_open.add(win.contact_id)
    return view


async def view(session: AsyncSession, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> ContactView:
    """Raises NotFound (404) for an unknown id or another tenant's contact."""
    contact = await ContactRepository(session, tenant_id).get(contact_id, what="contact")
    identifiers = await IdentifierRepository(session, tenant_id).of_contact(contact.id)
    consent: dict[str, ConsentEntry | None] = {c: None for c in CHANNELS}
    for entry in await ConsentRepository(session, tenant_id).history(contact.id):  # newest first
        if consent.get(entry.channel) is None:
            consent[entry.channel] = entry
    sup_repo = SuppressionRepository(session, tenant_id)
    suppressions: dict[str, Suppression | None] = {c: None for c in CHANNELS}
    for sup in await sup_repo.all(sup_repo.statement().where(Suppression.contact_id == contact.id)):
        suppressions[sup.channel] = sup
    win_repo = WindowRepository(session, tenant_id)
    windows = await win_repo.all(win_repo.statement().where(ConversationWindow.contact_id == contact.id)
                                 .order_by(ConversationWindow.last_inbound_at.desc()))
    return ContactView(contact, identifiers, consent, suppressions, windows)


def window_expires(last_inbound_at: datetime) -> datetime:
    return last_inbound_at + WINDOW


# --- erasure ------------------------------------------------------------------------------------

class _Scrubber:
    """Replaces every clear identifier value of the contact in free text (provider error messages, decisions)."""

    def __init__(self, idents: Sequence[ContactIdentifier]) -> None:
        needles: set[str] = set()
        for row in idents:
            if row.value:
                needles.add(row.value)
                if row.kind == "phone":
                    needles.add(row.value.lstrip("+"))  # WaId and some Twilio messages drop the +
        self.values = needles
        self._pattern = re.compile("|".join(re.escape(n) for n in sorted(needles, key=len, reverse=True)),
                                   re.IGNORECASE) if needles else None

    def __call__(self, text: str | None) -> str | None:
        if text is None or self._pattern is None:
            return text
        return self._pattern.sub(ERASED, text)


def _names_contact(payload: dict[str, Any], sids: set[str], attempt_ids: set[str], values: set[str]) -> bool:
    """Whether a stored provider callback is about this contact: by message, by attempt, or by address."""
    for key, value in payload.get("form") or ():
        if key in _SID_FIELDS and value in sids:
            return True
        if key in _ADDRESS_FIELDS and value:
            bare = value.split(":", 1)[1] if value.lower().startswith("whatsapp:") else value
            if bare.strip() in values or bare.strip().lstrip("+") in values:
                return True
    event = payload.get("event")
    if isinstance(event, dict):
        if str(event.get("notifygw_attempt_id") or "") in attempt_ids:
            return True
        if str(event.get("email") or "").lower() in values:
            return True
    return False


def _redacted(payload: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in payload.items() if k not in ("form", "event")}
    if "form" in payload:
        out["form"] = [[k, v] for k, v in payload["form"] if k in KEEP_TWILIO_FIELDS]
    if isinstance(payload.get("event"), dict):
        out["event"] = {k: v for k, v in payload["event"].items() if k in KEEP_SENDGRID_FIELDS}
    out["redacted"] = True
    return out


async def _candidate_events(session: AsyncSession, tenant_id: uuid.UUID, sids: set[str], attempt_ids: set[str],
                            values: set[str]) -> list[RawEvent]:
    base = select(RawEvent).where(RawEvent.tenant_id == tenant_id)
    if session.bind.dialect.name != "postgresql":  # the embedded SQLite: a dev database, scanned in Python
        return list((await session.execute(base)).scalars())
    doc = type_coerce(RawEvent.payload, JSONB)
    conditions: list[Any] = []
    for sid in sids:
        conditions += [doc.contains({"form": [[field, sid]]}) for field in _SID_FIELDS]
    for attempt_id in attempt_ids:
        conditions.append(doc.contains({"event": {"notifygw_attempt_id": attempt_id}}))
    for value in values:  # a phone is among them both with and without its +
        for address in (value, f"whatsapp:{value}"):
            conditions += [doc.contains({"form": [[field, address]]}) for field in _ADDRESS_FIELDS]
        if "@" in value:
            conditions.append(doc.contains({"event": {"email": value}}))
    found: dict[uuid.UUID, RawEvent] = {}
    for start in range(0, len(conditions), _CHUNK):
        for event in (await session.execute(base.where(or_(*conditions[start:start + _CHUNK])))).scalars():
            found[event.id] = event
    return list(found.values())


async def _redact_deliveries(session: AsyncSession, tenant_id: uuid.UUID, contact_id: uuid.UUID,
                             about: set[str]) -> int:
    """Events queued or sent to the tenant's webhook endpoints about this contact, its messages or notifications."""
    base = select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant_id)
    about = about | {str(contact_id)}
    if session.bind.dialect.name == "postgresql":
        doc = type_coerce(WebhookDelivery.payload, JSONB)
        conditions = [doc.contains({"data": {"contact_id": str(contact_id)}})]
        conditions += [doc.contains({"data": {"id": ref}}) for ref in about]
        rows: dict[uuid.UUID, WebhookDelivery] = {}
        for start in range(0, len(conditions), _CHUNK):
            for row in (await session.execute(base.where(or_(*conditions[start:start + _CHUNK])))).scalars():
                rows[row.id] = row
        candidates = list(rows.values())
    else:
        candidates = list((await session.execute(base)).scalars())
    count = 0
    for row in candidates:
        data = row.payload.get("data")
        if row.payload.get("redacted") or not isinstance(data, dict):
            continue
        if str(data.get("contact_id")) in about or str(data.get("id")) in about:
            row.payload = {**row.payload, "data": {k: v for k, v in data.items() if k in KEEP_EVENT_DATA}, "redacted": True}
            count += 1
    return count


async def erase(session: AsyncSession, tenant_id: uuid.UUID, contact_id: uuid.UUID, *, actor: Any) -> Contact:
    """Redact the contact's personal data everywhere we hold it; idempotent (a repeat redacts anything new).

    Work not yet handed to a provider is canceled: a message built from redacted fields would be empty.
    """
    contact = await ContactRepository(session, tenant_id).get(contact_id, what="contact")
    await session.refresh(contact, with_for_update=True)  # one erasure (or inbound merge) at a time
    already = contact.erased_at is not None
    idents = await IdentifierRepository(session, tenant_id).of_contact(contact.id)
    scrub = _Scrubber(idents)
    values = {v.lower() if "@" in v else v for v in scrub.values}

    for row in idents:
        row.value = None
    contact.profile_name = None
    contact.whatsapp_username = None
    contact.erased_at = contact.erased_at or utcnow()

    consent = await session.execute(
        update(ConsentEntry).where(ConsentEntry.tenant_id == tenant_id, ConsentEntry.contact_id == contact.id)
        .values(proof=None, ip=None, user_agent=None))

    inbound = (await session.execute(select(InboundMessage.id, InboundMessage.message_sid).where(
        InboundMessage.tenant_id == tenant_id, InboundMessage.contact_id == contact.id))).all()
    inbound_sids = {sid for _, sid in inbound}
    await session.execute(
        update(InboundMessage).where(InboundMessage.tenant_id == tenant_id, InboundMessage.contact_id == contact.id)
        .values(body=None, media=[], profile_name=None, from_address=None, wa_id=None, button_payload=None))

    canceled = await _cancel_unsent(session, tenant_id, contact.id)
    mine = select(Notification.id).where(Notification.tenant_id == tenant_id, Notification.contact_id == contact.id)
    notifications = await session.execute(
        update(Notification).where(Notification.tenant_id == tenant_id, Notification.contact_id == contact.id)
        .values({Notification.recipient: {}, Notification.variables: {}, Notification.text: None,
                 Notification.media_url: None, Notification.metadata_: {}}))
    attempts = (await session.execute(select(Attempt).where(Attempt.tenant_id == tenant_id,
                                                            Attempt.notification_id.in_(mine)))).scalars().all()
    for attempt in attempts:
        attempt.error_message = scrub(attempt.error_message)
    for decision in (await session.execute(select(Decision).where(
            Decision.tenant_id == tenant_id, Decision.notification_id.in_(mine), Decision.detail.is_not(None)))).scalars():
        decision.detail = scrub(decision.detail)

    sids = inbound_sids | {a.provider_message_id for a in attempts if a.provider_message_id}
    attempt_ids = {str(a.id) for a in attempts}
    events = 0
    for event in await _candidate_events(session, tenant_id, sids, attempt_ids, values):
        if not event.payload.get("redacted") and _names_contact(event.payload, sids, attempt_ids, values):
            event.payload = _redacted(event.payload)
            events += 1

    deliveries = await _redact_deliveries(session, tenant_id, contact.id, {str(i) for i, _ in inbound} | {
        str(n) for n in (await session.execute(mine)).scalars()})

    kept = sorted(s.channel for s in await SuppressionRepository(session, tenant_id).all(
        SuppressionRepository(session, tenant_id).statement().where(Suppression.contact_id == contact.id)))
    await session.flush()
    # Counts and channels only: the audit log must not become the one place the person survives.
    audit.record(session, tenant_id=tenant_id, actor=actor, action="contact.erased", target_type="contact",
                 target_id=contact.id, after={
                     "repeat": already, "identifiers": len(idents), "consent_entries": consent.rowcount,
                     "inbound_messages": len(inbound_sids), "notifications": notifications.rowcount,
                     "notifications_canceled": canceled, "provider_events": events, "webhook_deliveries": deliveries,
                     "suppressions_kept": kept})
    return contact


async def _cancel_unsent(session: AsyncSession, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> int:
    """Stop notifications not yet routed and attempts not yet handed to a provider (locks: notification, then attempt)."""
    pending = (await session.execute(select(Notification).where(
        Notification.tenant_id == tenant_id, Notification.contact_id == contact_id,
        Notification.status.in_(IN_FLIGHT_NOTIFICATIONS)).order_by(Notification.id).with_for_update())).scalars().all()
    if not pending:
        return 0
    unsent = (await session.execute(select(Attempt).where(
        Attempt.tenant_id == tenant_id, Attempt.notification_id.in_([n.id for n in pending]),
        Attempt.status.in_(UNSENT_ATTEMPTS)).order_by(Attempt.id).with_for_update())).scalars().all()
    stopped = {a.notification_id for a in unsent}
    for attempt in unsent:
        attempt.status, attempt.error_class = "canceled", "contact_erased"
    count = 0
    for n in pending:
        # Accepted: the route job will find it no longer `accepted` and do nothing. Queued: stop only if
        # its attempt had not reached the provider; one already `sending` or sent runs its course.
        if n.status == "accepted" or n.id in stopped:
            pipeline.set_status(n, "failed")
            session.add(Decision(tenant_id=tenant_id, notification_id=n.id, step="erasure", result="canceled",
                                 detail="the contact's personal data was erased before this was sent"))
            count += 1
    return count
