"""What the contacts API shows: identifiers (current and history), consent, suppression and the 24h window."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec

# The API names a BSUID `whatsapp_user_id`, as POST /v1/notifications does; inside, the kind is "bsuid".
IdentifierKind = Literal["phone", "whatsapp_user_id", "email"]


class IdentifierOut(msgspec.Struct):
    kind: IdentifierKind
    value: str | None  # null once the contact is erased (the keyed hash is kept, so lookups still match)
    current: bool  # false for a BSUID that Meta replaced (the user changed number): kept as history
    erased: bool
    first_seen_at: datetime
    last_seen_at: datetime


class ConsentChannelOut(msgspec.Struct):
    status: Literal["granted", "withdrawn"] | None  # null: nothing recorded on this channel
    source: str | None
    captured_at: datetime | None


class ConsentOut(msgspec.Struct):
    whatsapp: ConsentChannelOut
    email: ConsentChannelOut


class SuppressionChannelOut(msgspec.Struct):
    suppressed: bool
    suppression_id: uuid.UUID | None
    reason: str | None
    source: str | None
    since: datetime | None


class SuppressionStateOut(msgspec.Struct):
    whatsapp: SuppressionChannelOut
    email: SuppressionChannelOut


class WindowSenderOut(msgspec.Struct):
    sender: str  # the tenant's WhatsApp address the person wrote to, e.g. whatsapp:+14155238886
    last_inbound_at: datetime
    expires_at: datetime
    open: bool


class WindowOut(msgspec.Struct):
    open: bool  # open to at least one sender
    last_inbound_at: datetime | None
    expires_at: datetime | None  # when the last open window closes (or closed)
    senders: list[WindowSenderOut]


class ContactOut(msgspec.Struct):
    id: uuid.UUID
    profile_name: str | None
    whatsapp_username: str | None
    erased_at: datetime | None
    created_at: datetime
    updated_at: datetime
    identifiers: list[IdentifierOut]
    consent: ConsentOut
    suppression: SuppressionStateOut
    window: WindowOut


class ContactSummary(msgspec.Struct):
    id: uuid.UUID
    phone: str | None  # the current clear values; null when unknown or erased
    whatsapp_user_id: str | None
    email: str | None
    profile_name: str | None
    whatsapp_username: str | None
    suppressed: list[str]  # channels this person is suppressed on
    window_open: bool  # a WhatsApp session message can reach them now (to at least one sender)
    erased_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ContactPage(msgspec.Struct):
    items: list[ContactSummary]
    next_cursor: str | None
