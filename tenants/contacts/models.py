"""Contacts: one person, reachable by phone, WhatsApp BSUID and email.

Consent, suppressions and the 24h window hang off the contact, never off a bare address. Every
identifier is looked up by a keyed hash, so a contact erased on request (its clear values
redacted) still matches its phone and stays suppressed.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TenantOwned, utcnow


class Contact(TenantOwned, Base):
    __tablename__ = "contacts"

    profile_name: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    whatsapp_username: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    erased_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ContactIdentifier(TenantOwned, Base):
    __tablename__ = "contact_identifiers"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "kind", "value_hash"),
        sa.Index("ix_contact_identifiers_contact", "contact_id"),
    )

    contact_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(8))  # phone | email | bsuid
    value: Mapped[str | None] = mapped_column(sa.String(254), nullable=True)  # None once erased
    value_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    # A user who changes number gets a new BSUID: the old one stays, no longer current (history).
    is_current: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsentEntry(TenantOwned, Base):
    """Append-only ledger; the current state is the latest entry per (contact, channel)."""

    __tablename__ = "consent_ledger"
    __table_args__ = (sa.Index("ix_consent_ledger_contact", "contact_id", "channel", "captured_at"),)

    contact_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16))  # granted | withdrawn
    source: Mapped[str] = mapped_column(sa.String(100))
    proof: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    captured_at: Mapped[datetime] = mapped_column(default=utcnow)
    ip: Mapped[str | None] = mapped_column(sa.String(45), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    evidence: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)  # e.g. the STOP MessageSid


class Suppression(TenantOwned, Base):
    __tablename__ = "suppressions"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "contact_id", "channel"),)

    contact_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(sa.String(16))  # whatsapp | email
    reason: Mapped[str] = mapped_column(sa.String(64))
    source: Mapped[str] = mapped_column(sa.String(64))
    evidence: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)


class ConversationWindow(TenantOwned, Base):
    """The 24h customer-care window: last inbound message from this contact to this sender."""

    __tablename__ = "conversation_windows"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "contact_id", "sender"),)

    contact_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    sender: Mapped[str] = mapped_column(sa.String(64))
    last_inbound_at: Mapped[datetime] = mapped_column(default=utcnow)
