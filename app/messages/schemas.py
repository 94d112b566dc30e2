from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec


class MessageOut(msgspec.Struct):
    """One inbound WhatsApp message, as the `message.received` webhook event carries it, plus its keyword."""

    id: uuid.UUID
    message_sid: str
    contact_id: uuid.UUID | None
    from_: str | None = msgspec.field(name="from")
    to: str | None
    body: str | None
    media: list[dict[str, Any]]
    profile_name: str | None
    wa_id: str | None
    button_payload: str | None
    keyword: str | None  # stop | start: the message changed the person's consent
    received_at: datetime


class MessagePage(msgspec.Struct):
    items: list[MessageOut]
    next_cursor: str | None
