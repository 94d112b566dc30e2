from __future__ import annotations

import uuid
from collections.abc import Sequence

from app.core.repository import TenantRepository
from tenants.contacts.identifiers import Identifier
from tenants.contacts.models import ConsentEntry, Contact, ContactIdentifier, ConversationWindow, Suppression


class ContactRepository(TenantRepository[Contact]):
    model = Contact


class IdentifierRepository(TenantRepository[ContactIdentifier]):
    model = ContactIdentifier

    async def lookup(self, ident: Identifier) -> ContactIdentifier | None:
        return await self.one_by(kind=ident.kind, value_hash=ident.hash)

    async def of_contact(self, contact_id: uuid.UUID) -> Sequence[ContactIdentifier]:
        stmt = self.statement().where(ContactIdentifier.contact_id == contact_id).order_by(ContactIdentifier.created_at)
        return await self.all(stmt)


class ConsentRepository(TenantRepository[ConsentEntry]):
    model = ConsentEntry

    async def history(self, contact_id: uuid.UUID, channel: str | None = None) -> Sequence[ConsentEntry]:
        stmt = self.statement().where(ConsentEntry.contact_id == contact_id)
        if channel:
            stmt = stmt.where(ConsentEntry.channel == channel)
        return await self.all(stmt.order_by(ConsentEntry.captured_at.desc(), ConsentEntry.created_at.desc()))

    async def latest(self, contact_id: uuid.UUID, channel: str) -> ConsentEntry | None:
        """The entry in force: the latest captured, as `history` orders them (one row, by the ledger's index)."""
        stmt = (
            self.statement()
            .where(ConsentEntry.contact_id == contact_id, ConsentEntry.channel == channel)
            .order_by(ConsentEntry.captured_at.desc(), ConsentEntry.created_at.desc())
            .limit(1)
        )
        return (await self.session.scalars(stmt)).first()


class SuppressionRepository(TenantRepository[Suppression]):
    model = Suppression


class WindowRepository(TenantRepository[ConversationWindow]):
    model = ConversationWindow

    async def latest(self, contact_id: uuid.UUID, sender: str | None) -> ConversationWindow | None:
        stmt = self.statement().where(ConversationWindow.contact_id == contact_id)
        if sender:
            stmt = stmt.where(ConversationWindow.sender == sender)
        stmt = stmt.order_by(ConversationWindow.last_inbound_at.desc()).limit(1)
        return (await self.session.scalars(stmt)).first()
