"""Erasure of one person on request (DELETE /v1/contacts/{id}): every place that holds their clear data.

It composes tenants (contacts, consent, suppressions, the audit log) with the notify pipeline and
the webhook tables (inbound messages, notifications, their attempts and decisions, the stored
provider callbacks, the events for the tenant's own webhook endpoints, idempotency records), which
is why it lives in app/ and not in tenants/.

Erasure keeps what stops us messaging the person again, and nothing that identifies them in clear:
identifier rows keep their keyed hash (so a later request naming the same phone or email still
finds the contact and its suppression), suppression rows stay (their free text loses the person's
identifiers), and consent entries keep channel, status and time but lose proof, IP and user agent,
and the identifiers in their source. Audit entries stay, with the identifiers inside them replaced.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any
from typing import cast as type_cast

from sqlalchemy import CursorResult, String, cast, func, or_, select, type_coerce, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Base, utcnow
from app.core.repository import owned_by, repository
from app.notify import pipeline
from app.notify.models import Attempt, Decision, IdempotencyRecord, Notification
from app.webhooks.models import InboundMessage, RawEvent, WebhookDelivery
from tenants.audit import service as audit
from tenants.audit.models import AuditEntry
from tenants.contacts.models import ConsentEntry, Contact, ContactIdentifier, Suppression
from tenants.contacts.repository import ContactRepository, IdentifierRepository, SuppressionRepository

ERASED = "[erased]"
# Provider callback fields that name no one: kept when a stored callback is redacted, so the event
# still says which message and status it was about.
KEEP_TWILIO_FIELDS = frozenset(
    {
        "MessageSid",
        "SmsSid",
        "SmsMessageSid",
        "AccountSid",
        "MessagingServiceSid",
        "MessageStatus",
        "SmsStatus",
        "ErrorCode",
        "ApiVersion",
        "NumMedia",
        "NumSegments",
        "MessageType",
        "ChannelPrefix",
        "ChannelInstallSid",
    }
)
KEEP_SENDGRID_FIELDS = frozenset(
    {
        "event",
        "sg_event_id",
        "sg_message_id",
        "timestamp",
        "type",
        "bounce_classification",
        "status",
        "notifygw_attempt_id",
        "notifygw_notification_id",
    }
)
# Outbound webhook events to the tenant's own apps (app/endpoints): `data` fields that name no one.
KEEP_EVENT_DATA = frozenset(
    {
        "id",
        "message_sid",
        "contact_id",
        "to",
        "channel",
        "source",
        "evidence",
        "status",
        "template",
        "received_at",
        "created_at",
    }
)
_SID_FIELDS = ("MessageSid", "SmsSid", "SmsMessageSid")
_ADDRESS_FIELDS = ("From", "To", "WaId", "ExternalUserId", "ChannelToAddress", "OriginalRepliedMessageSender")
IN_FLIGHT_NOTIFICATIONS = ("accepted", "queued")
UNSENT_ATTEMPTS = ("pending", "retry_wait")
_CHUNK = 100


# --- erasure ------------------------------------------------------------------------------------


class _Scrubber:
    """Replaces every clear identifier value of the contact, and its profile names, in free text and JSON."""

    def __init__(self, idents: Sequence[ContactIdentifier], names: Sequence[str | None] = ()) -> None:
        needles: set[str] = set()
        for row in idents:
            if row.value:
                needles.add(row.value)
                if row.kind == "phone":
                    needles.add(row.value.lstrip("+"))  # WaId and some Twilio messages drop the +
        self.values = set(needles)  # identifiers only: what stored callbacks are matched by
        self.needles = needles | {n for n in names if n and len(n) >= 3}
        self._pattern = (
            re.compile("|".join(re.escape(n) for n in sorted(self.needles, key=len, reverse=True)), re.IGNORECASE)
            if self.needles
            else None
        )

    def __call__(self, text: str | None) -> str | None:
        if text is None or self._pattern is None:
            return text
        return self._pattern.sub(ERASED, text)

    def deep(self, value: Any) -> Any:
        """The same, through a JSON document (keys too)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(k): self.deep(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.deep(v) for v in value]
        return value


async def _scrub_rows(
    session: AsyncSession, tenant_id: uuid.UUID, model: type[Base], columns: Sequence[Any], scrub: _Scrubber
) -> int:
    """Rows of the tenant whose text or JSON columns mention the person: scrubbed in place; how many changed."""
    if not scrub.needles:
        return 0
    repo = repository(session, tenant_id, model)
    stmt = repo.statement()
    if session.get_bind().dialect.name == "postgresql":  # the embedded SQLite: a dev database, scanned in Python
        stmt = stmt.where(
            or_(
                *(
                    func.lower(cast(column, String)).contains(needle.lower(), autoescape=True)
                    for column in columns
                    for needle in scrub.needles
                )
            )
        )
    changed = 0
    for row in await repo.all(stmt):
        before = [getattr(row, column.key) for column in columns]
        after = [scrub.deep(value) for value in before]
        if after != before:
            for column, value in zip(columns, after, strict=True):
                setattr(row, column.key, value)
            changed += 1
    return changed


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


async def _candidate_events(
    session: AsyncSession, tenant_id: uuid.UUID, sids: set[str], attempt_ids: set[str], values: set[str]
) -> list[RawEvent]:
    repo = repository(session, tenant_id, RawEvent)
    base = repo.statement()
    if session.get_bind().dialect.name != "postgresql":  # the embedded SQLite: a dev database, scanned in Python
        return list(await repo.all(base))
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
        for event in await repo.all(base.where(or_(*conditions[start : start + _CHUNK]))):
            found[event.id] = event
    return list(found.values())


async def _redact_deliveries(
    session: AsyncSession, tenant_id: uuid.UUID, contact_id: uuid.UUID, about: set[str]
) -> int:
    """Events queued or sent to the tenant's webhook endpoints about this contact, its messages or notifications."""
    repo = repository(session, tenant_id, WebhookDelivery)
    base = repo.statement()
    about = about | {str(contact_id)}
    if session.get_bind().dialect.name == "postgresql":
        doc = type_coerce(WebhookDelivery.payload, JSONB)
        conditions = [doc.contains({"data": {"contact_id": str(contact_id)}})]
        conditions += [doc.contains({"data": {"id": ref}}) for ref in about]
        rows: dict[uuid.UUID, WebhookDelivery] = {}
        for start in range(0, len(conditions), _CHUNK):
            for row in await repo.all(base.where(or_(*conditions[start : start + _CHUNK]))):
                rows[row.id] = row
        candidates = list(rows.values())
    else:
        candidates = list(await repo.all(base))
    count = 0
    for row in candidates:
        data = row.payload.get("data")
        if row.payload.get("redacted") or not isinstance(data, dict):
            continue
        if str(data.get("contact_id")) in about or str(data.get("id")) in about:
            row.payload = {
                **row.payload,
                "data": {k: v for k, v in data.items() if k in KEEP_EVENT_DATA},
                "redacted": True,
            }
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
    scrub = _Scrubber(idents, names=(contact.profile_name, contact.whatsapp_username))
    values = {v.lower() if "@" in v else v for v in scrub.values}

    for row in idents:
        row.value = None
    contact.profile_name = None
    contact.whatsapp_username = None
    contact.erased_at = contact.erased_at or utcnow()

    # session.execute() is typed as returning a Result; an UPDATE's is a CursorResult, which has the rowcount.
    consent = type_cast(
        CursorResult[Any],
        await session.execute(
            update(ConsentEntry)
            .where(owned_by(ConsentEntry, tenant_id), ConsentEntry.contact_id == contact.id)
            .values(proof=None, ip=None, user_agent=None)
        ),
    )
    # Free text kept for what it says about the opt-in or opt-out, not about who: a tenant may have
    # written the address into a consent's source or a suppression's reason.
    consents = repository(session, tenant_id, ConsentEntry)
    for entry in await consents.all(consents.statement().where(ConsentEntry.contact_id == contact.id)):
        entry.source, entry.evidence = scrub(entry.source) or "", scrub(entry.evidence)
    suppressions = SuppressionRepository(session, tenant_id)
    for sup in await suppressions.all(suppressions.statement().where(Suppression.contact_id == contact.id)):
        sup.reason, sup.evidence = scrub(sup.reason) or "", scrub(sup.evidence)

    inbound = (
        await session.execute(
            select(InboundMessage.id, InboundMessage.message_sid).where(
                owned_by(InboundMessage, tenant_id), InboundMessage.contact_id == contact.id
            )
        )
    ).all()
    inbound_sids = {sid for _, sid in inbound}
    await session.execute(
        update(InboundMessage)
        .where(owned_by(InboundMessage, tenant_id), InboundMessage.contact_id == contact.id)
        .values(body=None, media=[], profile_name=None, from_address=None, wa_id=None, button_payload=None)
    )

    canceled = await _cancel_unsent(session, tenant_id, contact.id)
    mine = select(Notification.id).where(owned_by(Notification, tenant_id), Notification.contact_id == contact.id)
    notifications = type_cast(
        CursorResult[Any],
        await session.execute(
            update(Notification)
            .where(owned_by(Notification, tenant_id), Notification.contact_id == contact.id)
            .values(
                {
                    Notification.recipient: {},
                    Notification.variables: {},
                    Notification.sealed_variables: None,
                    Notification.text: None,
                    Notification.media_url: None,
                    Notification.metadata_: {},
                }
            )
        ),
    )
    attempts_repo = repository(session, tenant_id, Attempt)
    attempts = await attempts_repo.all(attempts_repo.statement().where(Attempt.notification_id.in_(mine)))
    for attempt in attempts:
        attempt.error_message = scrub(attempt.error_message)
    decisions = repository(session, tenant_id, Decision)
    for decision in await decisions.all(
        decisions.statement().where(Decision.notification_id.in_(mine), Decision.detail.is_not(None))
    ):
        decision.detail = scrub(decision.detail)

    sids = inbound_sids | {a.provider_message_id for a in attempts if a.provider_message_id}
    attempt_ids = {str(a.id) for a in attempts}
    events = 0
    for event in await _candidate_events(session, tenant_id, sids, attempt_ids, values):
        if not event.payload.get("redacted") and _names_contact(event.payload, sids, attempt_ids, values):
            event.payload = _redacted(event.payload)
            events += 1

    deliveries = await _redact_deliveries(
        session,
        tenant_id,
        contact.id,
        {str(i) for i, _ in inbound} | {str(n) for n in (await session.execute(mine)).scalars()},
    )

    # Audit entries (consents, suppressions, notifications recorded with their details) and stored
    # idempotent responses stay, with the person's identifiers replaced inside them.
    audits = await _scrub_rows(session, tenant_id, AuditEntry, (AuditEntry.before, AuditEntry.after), scrub)
    replays = await _scrub_rows(session, tenant_id, IdempotencyRecord, (IdempotencyRecord.response_body,), scrub)

    kept = sorted(
        s.channel for s in await suppressions.all(suppressions.statement().where(Suppression.contact_id == contact.id))
    )
    await session.flush()
    # Counts and channels only: the audit log must not become the one place the person survives.
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="contact.erased",
        target_type="contact",
        target_id=contact.id,
        after={
            "repeat": already,
            "identifiers": len(idents),
            "consent_entries": consent.rowcount,
            "inbound_messages": len(inbound_sids),
            "notifications": notifications.rowcount,
            "notifications_canceled": canceled,
            "provider_events": events,
            "webhook_deliveries": deliveries,
            "audit_entries": audits,
            "idempotency_records": replays,
            "suppressions_kept": kept,
        },
    )
    return contact


def provide() -> Any:
    """The `erase_contact` dependency of tenants' contacts controller (app/asgi.py)."""
    return erase


async def _cancel_unsent(session: AsyncSession, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> int:
    """Stop notifications not yet routed and attempts not yet handed to a provider (locks: notification, then attempt)."""
    notifications = repository(session, tenant_id, Notification)
    pending = await notifications.all(
        notifications.statement()
        .where(Notification.contact_id == contact_id, Notification.status.in_(IN_FLIGHT_NOTIFICATIONS))
        .order_by(Notification.id)
        .with_for_update()
    )
    if not pending:
        return 0
    attempts = repository(session, tenant_id, Attempt)
    unsent = await attempts.all(
        attempts.statement()
        .where(Attempt.notification_id.in_([n.id for n in pending]), Attempt.status.in_(UNSENT_ATTEMPTS))
        .order_by(Attempt.id)
        .with_for_update()
    )
    stopped = {a.notification_id for a in unsent}
    for attempt in unsent:
        attempt.status, attempt.error_class = "canceled", "contact_erased"
    count = 0
    for n in pending:
        # Accepted: the route job will find it no longer `accepted` and do nothing. Queued: stop only if
        # its attempt had not reached the provider; one already `sending` or sent runs its course.
        if n.status == "accepted" or n.id in stopped:
            pipeline.set_status(n, "failed")
            session.add(
                Decision(
                    tenant_id=tenant_id,
                    notification_id=n.id,
                    step="erasure",
                    result="canceled",
                    detail="the contact's personal data was erased before this was sent",
                )
            )
            count += 1
    return count
