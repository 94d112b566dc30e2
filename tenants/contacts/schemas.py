from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from tenants.contacts.identifiers import BSUID_PATTERN

Channel = Literal["whatsapp", "email"]
Phone = Annotated[
    str, msgspec.Meta(min_length=3, max_length=40, description="E.164, or national with the tenant's default country")
]
Bsuid = Annotated[
    str,
    msgspec.Meta(pattern=BSUID_PATTERN, description="WhatsApp business-scoped user id, e.g. US.13491208655302741918"),
]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
Short = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class ConsentIn(msgspec.Struct, forbid_unknown_fields=True):
    channel: Channel
    status: Literal["granted", "withdrawn"]
    source: Short
    phone: Phone | None = None
    whatsapp_user_id: Bsuid | None = None
    email: Email | None = None
    proof: Annotated[str, msgspec.Meta(max_length=4000)] | None = None
    captured_at: datetime | None = None
    ip: Annotated[str, msgspec.Meta(max_length=45)] | None = None
    user_agent: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class ConsentEntryOut(msgspec.Struct):
    id: uuid.UUID
    channel: str
    status: str
    source: str
    proof: str | None
    captured_at: datetime
    ip: str | None
    user_agent: str | None
    evidence: str | None
    created_at: datetime


class ConsentStateOut(msgspec.Struct):
    contact_id: uuid.UUID
    state: dict[str, str | None]
    history: list[ConsentEntryOut]


class SuppressionIn(msgspec.Struct, forbid_unknown_fields=True):
    channel: Channel
    reason: Short
    source: Short = "api"
    phone: Phone | None = None
    whatsapp_user_id: Bsuid | None = None
    email: Email | None = None


class SuppressionOut(msgspec.Struct):
    id: uuid.UUID
    contact_id: uuid.UUID
    channel: str
    reason: str
    source: str
    evidence: str | None
    created_at: datetime


class SuppressionPage(msgspec.Struct):
    items: list[SuppressionOut]
    next_cursor: str | None
