"""Contacts, their identifiers, consent ledger, suppressions and 24h windows."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import insert_on_conflict, insert_with, table_of, utcnow
from app.core.repository import owned_by
from tenants.accounts import quotas
from tenants.audit import service as audit
from tenants.contacts.identifiers import Identifier
from tenants.contacts.models import ConsentEntry, Contact, ContactIdentifier, ConversationWindow, Suppression
from tenants.contacts.repository import (
    ConsentRepository,
    ContactRepository,
    IdentifierRepository,
    SuppressionRepository,
    WindowRepository,
)

WINDOW = timedelta(hours=24)
PRIORITY = {"bsuid": 0, "phone": 1, "email": 2}
# The tables of this package that hold a contact's rows (tenant_id, contact_id): moved on a merge.
OWNED = (ContactIdentifier, ConsentEntry, Suppression, ConversationWindow)


async def find(session: AsyncSession, tenant_id: uuid.UUID, ident: Identifier) -> Contact | None:
    row = await IdentifierRepository(session, tenant_id).lookup(ident)
    return await ContactRepository(session, tenant_id).find(row.contact_id) if row else None


async def resolve(
    session: AsyncSession, tenant_id: uuid.UUID, idents: Iterable[Identifier], *, within_quota: bool = False
) -> Contact:
    """resolve_id, loaded."""
    return await ContactRepository(session, tenant_id).get(
        await resolve_id(session, tenant_id, idents, within_quota=within_quota)
    )


async def resolve_id(
    session: AsyncSession, tenant_id: uuid.UUID, idents: Iterable[Identifier], *, within_quota: bool = False
) -> uuid.UUID:
    """The contact named by the strongest known identifier (BSUID, then phone, then email).

    Identifiers not yet known are attached to it. Two known identifiers naming different contacts
    are NOT merged here: a client's say-so is not proof that a phone and an email are one person.
    Only an inbound message from WhatsApp (link_inbound) merges.

    Two requests naming one new person at once agree on one contact: identifiers go in with ON
    CONFLICT DO NOTHING, and the one that loses the race adopts the winner's contact.

    within_quota: a new person counts against the tenant's contacts quota (409 when it is full).
    API paths that add people ask for it; inbound messages and provider events never do.
    """
    idents = sorted(set(idents), key=lambda i: PRIORITY[i.kind])
    known = await _contact_ids(session, tenant_id, idents)
    contact_id = next((known[i] for i in idents if i in known), None)
    created = contact_id is None
    new = [i for i in idents if i not in known]
    now = utcnow()
    identifier_rows = [
        {
            "id": uuid.uuid4(),
            "tenant_id": tenant_id,
            "contact_id": contact_id,
            "kind": i.kind,
            "value": i.value,
            "value_hash": i.hash,
            "is_current": True,
            "last_seen_at": now,
            "created_at": now,
        }
        for i in new
    ]
    inserted: list[Any] = []
    if contact_id is None:
        if within_quota:
            await quotas.take_contact(session, tenant_id)
        contact_id = uuid.uuid4()
        contact_row = {"id": contact_id, "tenant_id": tenant_id, "created_at": now, "updated_at": now}
        for row in identifier_rows:
            row["contact_id"] = contact_id
        if identifier_rows:  # the person and their identifiers: one statement on PostgreSQL
            inserted = await insert_with(
                session,
                (_CONTACTS, contact_row),
                _IDENTIFIERS,
                identifier_rows,
                do_nothing_on=["tenant_id", "kind", "value_hash"],
                returning=_IDENTIFIERS.c.kind,
            )
        else:
            await session.execute(insert(_CONTACTS).values(contact_row))
    elif identifier_rows:
        stmt = insert_on_conflict(session, _IDENTIFIERS).values(identifier_rows)
        inserted = list(
            (
                await session.execute(
                    stmt.on_conflict_do_nothing(index_elements=["tenant_id", "kind", "value_hash"]).returning(
                        _IDENTIFIERS.c.kind
                    )
                )
            )
            .scalars()
            .all()
        )
    if new and created and not inserted:  # another request created this person first: adopt its contact
        winners = await _contact_ids(session, tenant_id, idents)
        adopted = next((winners[i] for i in idents if i in winners), None)
        if adopted is not None:
            await session.execute(delete(Contact).where(owned_by(Contact, tenant_id), Contact.id == contact_id))
            contact_id = adopted
    return contact_id


_CONTACTS = table_of(Contact)
_IDENTIFIERS = table_of(ContactIdentifier)


async def _contact_ids(
    session: AsyncSession, tenant_id: uuid.UUID, idents: Sequence[Identifier]
) -> dict[Identifier, uuid.UUID]:
    """Which of these identifiers are known, and to which contact: one query."""
    if not idents:
        return {}
    by_key: dict[tuple[str, bytes], Identifier] = {(i.kind, i.hash): i for i in idents}
    params: dict[str, Any] = {"tenant_id": tenant_id}
    for n, (kind, value_hash) in enumerate(by_key):
        params[f"k{n}"], params[f"h{n}"] = kind, value_hash
    rows = await session.execute(_lookup(len(by_key)), params)
    return {by_key[(kind, bytes(value_hash))]: contact_id for kind, value_hash, contact_id in rows}


_LOOKUPS: dict[int, Any] = {}


def _lookup(n: int) -> Any:
    """The identifier lookup for `n` identifiers, built once (values bound at execution): it runs on every
    accept, and SQLAlchemy memoizes a statement's cache key, so no request builds or walks it again."""
    stmt = _LOOKUPS.get(n)
    if stmt is None:
        tenant = cast(uuid.UUID, bindparam("tenant_id", type_=_IDENTIFIERS.c.tenant_id.type))  # bound per call
        stmt = _LOOKUPS[n] = select(
            ContactIdentifier.kind, ContactIdentifier.value_hash, ContactIdentifier.contact_id
        ).where(
            owned_by(ContactIdentifier, tenant),
            or_(
                *(
                    and_(
                        ContactIdentifier.kind == bindparam(f"k{i}", type_=_IDENTIFIERS.c.kind.type),
                        ContactIdentifier.value_hash == bindparam(f"h{i}", type_=_IDENTIFIERS.c.value_hash.type),
                    )
                    for i in range(n)
                )
            ),
        )
    return stmt


def _unique_beside_contact(model: Any) -> list[tuple[str, ...]]:
    """The other columns of each unique constraint that holds contact_id (tenant_id aside): where two
    contacts being merged both have a row, these collide."""
    keys = []
    for constraint in model.__table__.constraints:
        names = [c.name for c in constraint.columns]
        if isinstance(constraint, sa.UniqueConstraint) and "contact_id" in names:
            keys.append(tuple(n for n in names if n not in ("tenant_id", "contact_id")))
    return keys


async def _merge(
    session: AsyncSession, tenant_id: uuid.UUID, keep: Contact, gone: Contact, also_owned: Sequence[Any]
) -> None:
    """Fold `gone` into `keep`: inbound WhatsApp proved they are one person."""
    # Where both have a row under a unique key that holds the contact, keep's row wins.
    for model in (*OWNED, *also_owned):
        for key in _unique_beside_contact(model):
            keep_keys = select(*(getattr(model, c) for c in key)).where(
                owned_by(model, tenant_id), model.contact_id == keep.id
            )
            gone_key = sa.tuple_(*(getattr(model, c) for c in key))
            await session.execute(
                delete(model).where(owned_by(model, tenant_id), model.contact_id == gone.id, gone_key.in_(keep_keys))
            )
    for model in (*OWNED, *also_owned):
        await session.execute(
            update(model).where(owned_by(model, tenant_id), model.contact_id == gone.id).values(contact_id=keep.id)
        )
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


async def link_inbound(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    phone: Identifier | None,
    bsuid: Identifier | None,
    profile_name: str | None = None,
    at: datetime | None = None,
    also_owned: Sequence[Any],
) -> Contact | None:
    """Create or merge the contact behind an inbound WhatsApp message; None when it names nobody.

    also_owned: the mapped classes outside this package whose rows belong to a contact (with
    `tenant_id` and `contact_id`); a merge moves them to the contact kept. The caller in app/ names
    them (app/people/service.py), as tenants/ does not import the notify or webhook tables. It has
    no default because the contact foreign keys cascade: a table left out would lose the merged
    contact's rows.
    """
    if phone is None and bsuid is None:
        return None
    id_repo = IdentifierRepository(session, tenant_id)
    contacts = ContactRepository(session, tenant_id)
    phone_row = await id_repo.lookup(phone) if phone else None
    bsuid_row = await id_repo.lookup(bsuid) if bsuid else None
    now = utcnow()
    at = at or now

    if phone_row and bsuid_row and phone_row.contact_id != bsuid_row.contact_id:
        await _merge(
            session,
            tenant_id,
            await contacts.get(phone_row.contact_id),
            await contacts.get(bsuid_row.contact_id),
            also_owned,
        )
        await session.refresh(bsuid_row)
    anchor = phone_row or bsuid_row
    contact = await contacts.get(anchor.contact_id) if anchor else contacts.add(Contact())
    await session.flush()

    if phone and phone_row is None:
        id_repo.add(ContactIdentifier(contact_id=contact.id, kind="phone", value=phone.value, value_hash=phone.hash))
    if bsuid:
        if bsuid_row is None:
            bsuid_row = id_repo.add(
                ContactIdentifier(
                    contact_id=contact.id, kind="bsuid", value=bsuid.value, value_hash=bsuid.hash, last_seen_at=at
                )
            )
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


async def identifiers(
    session: AsyncSession, tenant_id: uuid.UUID, contact_id: uuid.UUID
) -> Sequence[ContactIdentifier]:
    return await IdentifierRepository(session, tenant_id).of_contact(contact_id)


def current(idents: Sequence[ContactIdentifier], kind: str) -> str | None:
    """The current clear value of one kind (None once erased)."""
    for row in sorted(idents, key=lambda r: r.last_seen_at, reverse=True):
        if row.kind == kind and row.is_current and row.value:
            return row.value
    return None


# --- consent ----------------------------------------------------------------------------------


async def record_consent(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    contact: Contact,
    *,
    channel: str,
    status: str,
    source: str,
    proof: str | None,
    captured_at: datetime | None,
    ip: str | None = None,
    user_agent: str | None = None,
    evidence: str | None = None,
    actor: Any,
) -> ConsentEntry:
    entry = ConsentRepository(session, tenant_id).add(
        ConsentEntry(
            contact_id=contact.id,
            channel=channel,
            status=status,
            source=source,
            proof=proof,
            captured_at=captured_at or utcnow(),
            ip=ip,
            user_agent=user_agent,
            evidence=evidence,
        )
    )
    await session.flush()
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action=f"consent.{status}",
        target_type="contact",
        target_id=contact.id,
        after={"channel": channel, "status": status, "source": source, "evidence": evidence},
    )
    return entry


async def consent_state(session: AsyncSession, tenant_id: uuid.UUID, contact_id: uuid.UUID, channel: str) -> str | None:
    entry = await latest_consent(session, tenant_id, contact_id, channel)
    return entry.status if entry else None


async def latest_consent(
    session: AsyncSession, tenant_id: uuid.UUID, contact_id: uuid.UUID, channel: str
) -> ConsentEntry | None:
    """The ledger entry in force for (contact, channel): its status, and when it was captured (routing's
    consent and consent-age steps read this one row)."""
    return await ConsentRepository(session, tenant_id).latest(contact_id, channel)


# --- suppressions -----------------------------------------------------------------------------


async def suppression(
    session: AsyncSession, tenant_id: uuid.UUID, contact_id: uuid.UUID, channel: str
) -> Suppression | None:
    return await SuppressionRepository(session, tenant_id).one_by(contact_id=contact_id, channel=channel)


async def suppress(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    contact: Contact,
    *,
    channel: str,
    reason: str,
    source: str,
    evidence: str | None = None,
    actor: Any,
) -> tuple[Suppression, bool]:
    """Idempotent: (row, created)."""
    existing = await suppression(session, tenant_id, contact.id, channel)
    if existing is not None:
        return existing, False
    row = SuppressionRepository(session, tenant_id).add(
        Suppression(contact_id=contact.id, channel=channel, reason=reason, source=source, evidence=evidence)
    )
    await session.flush()
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="suppression.added",
        target_type="suppression",
        target_id=row.id,
        after={
            "contact_id": str(contact.id),
            "channel": channel,
            "reason": reason,
            "source": source,
            "evidence": evidence,
        },
    )
    return row, True


async def lift(session: AsyncSession, tenant_id: uuid.UUID, row: Suppression, *, actor: Any) -> None:
    before = {"contact_id": str(row.contact_id), "channel": row.channel, "reason": row.reason, "source": row.source}
    await session.delete(row)
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="suppression.removed",
        target_type="suppression",
        target_id=row.id,
        before=before,
    )


# --- the 24h window ---------------------------------------------------------------------------


async def touch_window(
    session: AsyncSession, tenant_id: uuid.UUID, contact_id: uuid.UUID, sender: str, at: datetime
) -> None:
    repo = WindowRepository(session, tenant_id)
    row = await repo.one_by(contact_id=contact_id, sender=sender)
    if row is None:
        repo.add(ConversationWindow(contact_id=contact_id, sender=sender, last_inbound_at=at))
    elif at > row.last_inbound_at:  # out-of-order webhooks never move the window back
        row.last_inbound_at = at
    await session.flush()


async def last_inbound(
    session: AsyncSession, tenant_id: uuid.UUID, contact_id: uuid.UUID, sender: str | None
) -> datetime | None:
    """Latest inbound to this sender, or to any of the tenant's senders when sending via a Messaging Service."""
    row = await WindowRepository(session, tenant_id).latest(contact_id, sender)
    return row.last_inbound_at if row else None
