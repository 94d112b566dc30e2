"""Contacts as a whole: list and read them for the API.

The contact model, lookups, merging, consent, suppressions and windows live in tenants.contacts;
this package reads them together. Erasure (DELETE /v1/contacts/{id}) reaches into the notify and
webhook tables, so it lives in app/erasure, which composes the two.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utcnow
from app.core.pagination import paginate
from tenants.contacts.identifiers import Identifier
from tenants.contacts.models import ConsentEntry, Contact, ContactIdentifier, ConversationWindow, Suppression
from tenants.contacts.repository import (
    ConsentRepository,
    ContactRepository,
    IdentifierRepository,
    SuppressionRepository,
    WindowRepository,
)
from tenants.contacts.service import WINDOW

CHANNELS = ("whatsapp", "email")


# --- reading ------------------------------------------------------------------------------------


@dataclass
class ContactView:
    contact: Contact
    identifiers: Sequence[ContactIdentifier]
    consent: dict[str, ConsentEntry | None]
    suppressions: dict[str, Suppression | None]
    windows: Sequence[ConversationWindow]


async def matching_contact(
    session: AsyncSession, tenant_id: uuid.UUID, idents: Iterable[Identifier]
) -> uuid.UUID | None:
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


async def page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    only: uuid.UUID | None,
    filtered: bool,
    cursor: str | None,
    limit: int,
) -> ContactPageView:
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
        for row in await id_repo.all(
            id_repo.statement().where(ContactIdentifier.contact_id.in_(ids)).order_by(ContactIdentifier.created_at)
        ):
            view.identifiers[row.contact_id].append(row)
        sup_repo = SuppressionRepository(session, tenant_id)
        for sup in await sup_repo.all(
            sup_repo.statement().where(Suppression.contact_id.in_(ids)).order_by(Suppression.channel)
        ):
            view.suppressions[sup.contact_id].append(sup)
        win_repo = WindowRepository(session, tenant_id)
        for win in await win_repo.all(
            win_repo.statement().where(
                ConversationWindow.contact_id.in_(ids), ConversationWindow.last_inbound_at > utcnow() - WINDOW
            )
        ):
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
    windows = await win_repo.all(
        win_repo.statement()
        .where(ConversationWindow.contact_id == contact.id)
        .order_by(ConversationWindow.last_inbound_at.desc())
    )
    return ContactView(contact, identifiers, consent, suppressions, windows)


def window_expires(last_inbound_at: datetime) -> datetime:
    return last_inbound_at + WINDOW
