"""Contacts, their identifiers, consent ledger, suppressions and 24h windows."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import insert_on_conflict, utcnow
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

WINDOW = timedelta(hours=24)
PRIORITY = {"bsuid": 0, "phone": 1, "email": 2}


async def find(session: AsyncSession, tenant_id: uuid.UUID, ident: Identifier) -> Contact | None:
    row = await IdentifierRepository(session, tenant_id).lookup(ident)
    return await ContactRepository(session, tenant_id).find(row.contact_id) if row else None


async def resolve(session: AsyncSession, tenant_id: uuid.UUID, idents: Iterable[Identifier]) -> Contact:
    """resolve_id, loaded."""
    return await ContactRepository(session, tenant_id).get(await resolve_id(session, tenant_id, idents))


async def resolve_id(session: AsyncSession, tenant_id: uuid.UUID, idents: Iterable[Identifier]) -> uuid.UUID:
    """The contact named by the strongest known identifier (BSUID, then phone, then email).

    Identifiers not yet known are attached to it. Two known identifiers naming different contacts
    are NOT merged here: a client's say-so is not proof that a phone and an email are one person.
    Only an inbound message from WhatsApp (link_inbound) merges.

    Two requests naming one new person at once agree on one contact: identifiers go in with ON
    CONFLICT DO NOTHING, and the one that loses the race adopts the winner's contact.
    """
    idents = sorted(set(idents), key=lambda i: PRIORITY[i.kind])
    known = await _contact_ids(session, tenant_id, idents)
    contact_id = next((known[i] for i in idents if i in known), None)
    created = contact_id is None
    if created:
        contact_id = uuid.uuid4()
        now = utcnow()
        await session.execute(insert(Contact.__table__).values(id=contact_id, tenant_id=tenant_id, created_at=now,
                                                               updated_at=now))
    new = [i for i in idents if i not in known]
    if new:
        now = utcnow()
        stmt = insert_on_conflict(session, _IDENTIFIERS).values([
            {"id": uuid.uuid4(), "tenant_id": tenant_id, "contact_id": contact_id, "kind": i.kind, "value": i.value,
             "value_hash": i.hash, "is_current": True, "last_seen_at": now, "created_at": now} for i in new])
        inserted = (await session.execute(stmt.on_conflict_do_nothing(
            index_elements=["tenant_id", "kind", "value_hash"]).returning(_IDENTIFIERS.c.kind))).scalars().all()
        if created and not inserted:  # another request created this person first: adopt its contact
            winners = await _contact_ids(session, tenant_id, idents)
            adopted = next((winners[i] for i in idents if i in winners), None)
            if adopted is not None:
                await session.execute(delete(Contact).where(Contact.tenant_id == tenant_id, Contact.id == contact_id))
                contact_id = adopted
    return contact_id


_IDENTIFIERS = ContactIdentifier.__table__


async def _contact_ids(session: AsyncSession, tenant_id: uuid.UUID, idents: Sequence[Identifier]) -> dict[Identifier, uuid.UUID]:
    """Which of these identifiers are known, and to which contact: one query."""
    if not idents:
        return {}
    by_key = {(i.kind, i.hash): i for i in idents}
    rows = await session.execute(select(ContactIdentifier.kind, ContactIdentifier.value_hash, ContactIdentifier.contact_id)
                                 .where(ContactIdentifier.tenant_id == tenant_id,
                                        or_(*(and_(ContactIdentifier.kind == k, ContactIdentifier.value_hash == h)
                                              for k, h in by_key))))
    return {by_key[(kind, bytes(value_hash))]: contact_id for kind, value_hash, contact_id in rows}


async def _merge(session: AsyncSession, tenant_id: uuid.UUID, keep: Contact, gone: Contact) -> None:
    """Fold `gone` into `keep`: inbound WhatsApp proved they are one person."""
    from app.notify.models import Notification  # notify refers to contacts, not the other way round
    from app.webhooks.models import InboundMessage

    # Where both have a row under a unique key, keep's row wins.
    for model, key in ((Suppression, "channel"), (ConversationWindow, "sender")):
        keep_keys = select(getattr(model, key)).where(model.tenant_id == tenant_id, model.contact_id == keep.id)
        await session.execute(delete(model).where(model.tenant_id == tenant_id, model.contact_id == gone.id,
                                                  getattr(model, key).in_(keep_keys)))
    for model in (ContactIdentifier, ConsentEntry, Suppression, ConversationWindow, Notification, InboundMessage):
        await session.execute(update(model).where(model.tenant_id == tenant_id, model.contact_id == gone.id)
                              .values(contact_id=keep.id))
    keep.profile_name = keep.profile_name or gone.profile_name
    keep.whatsapp_username = keep.whatsapp_username or gone.whatsapp_username
    await session.delete(gone)
    await session.flush()


async def _one_current_bsuid(session: AsyncSession, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> None:
    """Meta issues a new BSUID when a user changes number: the most recently seen one is current, the
    others stay as history (so a late, replayed message from an old BSUID does not revive it)."""
    rows = [r for r in await IdentifierRepository(session, tenant_id).of_contact(contact_id) if r.kind == "bsuid"]
    latest = max(rows, key=lambda r: r.last_seen_at, default=None)
    for row in rows:
        row.is_current = row is latest


async def link_inbound(session: AsyncSession, tenant_id: uuid.UUID, *, phone: Identifier | None,
                       bsuid: Identifier | None, profile_name: str | None = None,
                       at: datetime | None = None) -> Contact | None:
    """Create or merge the contact behind an inbound WhatsApp message; None when it names nobody."""
    if phone is None and bsuid is None:
        return None
    id_repo = IdentifierRepository(session, tenant_id)
    contacts = ContactRepository(session, tenant_id)
    phone_row = await id_repo.lookup(phone) if phone else None
    bsuid_row = await id_repo.lookup(bsuid) if bsuid else None
    now = utcnow()
    at = at or now

    if phone_row and bsuid_row and phone_row.contact_id != bsuid_row.contact_id:
        await _merge(session, tenant_id, await contacts.get(phone_row.contact_id), await contacts.get(bsuid_row.contact_id))
        await session.refresh(bsuid_row)
    anchor = phone_row or bsuid_row
    contact = await contacts.get(anchor.contact_id) if anchor else contacts.add(Contact())
    await session.flush()

    if phone and phone_row is None:
        id_repo.add(ContactIdentifier(contact_id=contact.id, kind="phone", value=phone.value, value_hash=phone.hash))
    if bsuid:
        if bsuid_row is None:
            bsuid_row = id_repo.add(ContactIdentifier(contact_id=contact.id, kind="bsuid", value=bsuid.value,
                                                      value_hash=bsuid.hash, last_seen_at=at))
            await session.flush()
        else:
            bsuid_row.last_seen_at = max(bsuid_row.last_seen_at, at)
        await _one_current_bsuid(session, tenant_id, contact.id)
    if phone_row:
        phone_row.last_seen_at = now
    if profile_name and contact.erased_at is None:
        contact.profile_name = profile_name[:200]
    await session.flush()
    return contact


async def identifiers(session: AsyncSession, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> Sequence[ContactIdentifier]:
    return await IdentifierRepository(session, tenant_id).of_contact(contact_id)


def current(idents: Sequence[ContactIdentifier], kind: str) -> str | None:
    """The current clear value of one kind (None once erased)."""
    for row in sorted(idents, key=lambda r: r.last_seen_at, reverse=True):
        if row.kind == kind and row.is_current and row.value:
            return row.value
    return None


# --- consent ----------------------------------------------------------------------------------

async def record_consent(session: AsyncSession, tenant_id: uuid.UUID, contact: Contact, *, channel: str, status: str,
                         source: str, proof: str | None, captured_at: datetime | None, ip: str | None = None,
                         user_agent: str | None = None, evidence: str | None = None, actor: Any) -> ConsentEntry:
    entry = ConsentRepository(session, tenant_id).add(ConsentEntry(
        contact_id=contact.id, channel=channel, status=status, source=source, proof=proof,
        captured_at=captured_at or utcnow(), ip=ip, user_agent=user_agent, evidence=evidence))
    await session.flush()
    audit.record(session, tenant_id=tenant_id, actor=actor, action=f"consent.{status}", target_type="contact",
                 target_id=contact.id, after={"channel": channel, "status": status, "source": source, "evidence": evidence})
    return entry


async def consent_state(session: AsyncSession, tenant_id: uuid.UUID, contact_id: uuid.UUID, channel: str) -> str | None:
    history = await ConsentRepository(session, tenant_id).history(contact_id, channel)
    return history[0].status if history else None


# --- suppressions -----------------------------------------------------------------------------

async def suppression(session: AsyncSession, tenant_id: uuid.UUID, contact_id: uuid.UUID, channel: str) -> Suppression | None:
    return await SuppressionRepository(session, tenant_id).one_by(contact_id=contact_id, channel=channel)


async def suppress(session: AsyncSession, tenant_id: uuid.UUID, contact: Contact, *, channel: str, reason: str,
                   source: str, evidence: str | None = None, actor: Any) -> tuple[Suppression, bool]:
    """Idempotent: (row, created)."""
    existing = await suppression(session, tenant_id, contact.id, channel)
    if existing is not None:
        return existing, False
    row = SuppressionRepository(session, tenant_id).add(Suppression(
        contact_id=contact.id, channel=channel, reason=reason, source=source, evidence=evidence))
    await session.flush()
    audit.record(session, tenant_id=tenant_id, actor=actor, action="suppression.added", target_type="suppression",
                 target_id=row.id, after={"contact_id": str(contact.id), "channel": channel, "reason": reason,
                                          "source": source, "evidence": evidence})
    return row, True


async def lift(session: AsyncSession, tenant_id: uuid.UUID, row: Suppression, *, actor: Any) -> None:
    before = {"contact_id": str(row.contact_id), "channel": row.channel, "reason": row.reason, "source": row.source}
    await session.delete(row)
    audit.record(session, tenant_id=tenant_id, actor=actor, action="suppression.removed", target_type="suppression",
                 target_id=row.id, before=before)


# --- the 24h window ---------------------------------------------------------------------------

async def touch_window(session: AsyncSession, tenant_id: uuid.UUID, contact_id: uuid.UUID, sender: str, at: datetime) -> None:
    repo = WindowRepository(session, tenant_id)
    row = await repo.one_by(contact_id=contact_id, sender=sender)
    if row is None:
        repo.add(ConversationWindow(contact_id=contact_id, sender=sender, last_inbound_at=at))
    elif at > row.last_inbound_at:  # out-of-order webhooks never move the window back
        row.last_inbound_at = at
    await session.flush()


async def last_inbound(session: AsyncSession, tenant_id: uuid.UUID, contact_id: uuid.UUID, sender: str | None) -> datetime | None:
    """Latest inbound to this sender, or to any of the tenant's senders when sending via a Messaging Service."""
    row = await WindowRepository(session, tenant_id).latest(contact_id, sender)
    return row.last_inbound_at if row else None
