from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from tenants.contacts.schemas import Bsuid, Email, Phone
from tenants.templates.schemas import Locale, TemplateKey

Channel = Literal["whatsapp", "email"]
VarValue = str | int | float | bool


class Recipient(msgspec.Struct, forbid_unknown_fields=True):
    phone: Phone | None = None
    whatsapp_user_id: Bsuid | None = None
    email: Email | None = None
    locale: Locale | None = None


class NotificationIn(msgspec.Struct, forbid_unknown_fields=True):
    to: Recipient
    template: TemplateKey | None = None
    variables: Annotated[dict[Annotated[str, msgspec.Meta(max_length=64)], VarValue], msgspec.Meta(max_length=100)] = {}
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)] | None = None
    media_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    channels: Annotated[list[Channel], msgspec.Meta(min_length=1, max_length=2)] = msgspec.field(
        default_factory=lambda: ["whatsapp", "email"]
    )
    metadata: dict[str, Any] = {}


class NotificationAccepted(msgspec.Struct):
    id: uuid.UUID
    status: str
    created_at: datetime


class DecisionOut(msgspec.Struct):
    step: str
    result: str
    detail: str | None
    at: datetime


class ProviderEventOut(msgspec.Struct):
    attempt_id: uuid.UUID | None
    provider: str
    status: str
    error_code: str | None
    applied: bool
    occurred_at: datetime


class AttemptOut(msgspec.Struct):
    id: uuid.UUID
    channel: str
    kind: str
    provider: str
    provider_message_id: str | None
    status: str
    error_class: str | None
    error_code: str | None
    error_message: str | None
    error_more_info: str | None  # the provider's link to the error's documentation (Twilio's more_info)
    provider_request_id: str | None  # Twilio-Request-Id of the last create request, refused or accepted
    tries: int
    possible_duplicate: bool
    created_at: datetime
    updated_at: datetime


class NotificationOut(msgspec.Struct):
    id: uuid.UUID
    status: str
    channel: str | None
    contact_id: uuid.UUID
    to: dict[str, Any]
    template: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    attempts: list[AttemptOut]
    events: list[ProviderEventOut]
    decisions: list[DecisionOut]


class NotificationSummary(msgspec.Struct):
    id: uuid.UUID
    status: str
    channel: str | None
    to: dict[str, Any]
    template: str | None
    created_at: datetime


class NotificationPage(msgspec.Struct):
    items: list[NotificationSummary]
    next_cursor: str | None
