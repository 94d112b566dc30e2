from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

EventType = Literal[
    "notification.updated", "message.received", "contact.opted_out", "contact.opted_in", "whatsapp.sender_capped"
]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2048, description="https URL of the tenant app's receiver")]
Events = Annotated[list[EventType], msgspec.Meta(min_length=1, description="event types to receive")]


class EndpointCreate(msgspec.Struct, forbid_unknown_fields=True):
    url: Url
    events: Events


class EndpointUpdate(msgspec.Struct, forbid_unknown_fields=True):
    url: Url | None = None
    events: Events | None = None
    # Re-enabling also clears failing_since: the endpoint starts a fresh 3-day allowance.
    status: Literal["enabled", "disabled"] | None = None


class EndpointOut(msgspec.Struct):
    id: uuid.UUID
    url: str
    events: list[str]
    status: str
    secret: str | None  # masked ("…abcd"): enough to tell two secrets apart, never to sign with
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointCreated(msgspec.Struct):
    """The only responses that carry the full signing secret: on create and on rotation."""

    id: uuid.UUID
    url: str
    events: list[str]
    status: str
    secret: str
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointPage(msgspec.Struct):
    items: list[EndpointOut]
    next_cursor: str | None


class DeliveryAttemptOut(msgspec.Struct):
    id: uuid.UUID
    response_status: int | None
    error: str | None
    duration_ms: int
    created_at: datetime


class DeliveryOut(msgspec.Struct):
    id: uuid.UUID  # also the `webhook-id` header: stable across retries, for the receiver to dedupe on
    endpoint_id: uuid.UUID
    event_type: str
    status: str  # pending | succeeded | failed
    attempt_count: int
    next_attempt_at: datetime | None
    payload: dict[str, Any]
    attempts: list[DeliveryAttemptOut]
    created_at: datetime
    updated_at: datetime


class DeliveryPage(msgspec.Struct):
    items: list[DeliveryOut]
    next_cursor: str | None
