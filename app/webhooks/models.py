"""The webhook inbox (raw provider events), inbound messages, and outbound tenant webhooks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TenantOwned, unredacted_index, utcnow


class RawEvent(TenantOwned, Base):
    """A validated provider callback, stored before it is processed. The unique key is the dedupe truth."""

    __tablename__ = "raw_events"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "kind", "dedupe_key"),
        sa.Index("ix_raw_events_received", "received_at"),
        sa.Index("ix_raw_events_tenant_created", "tenant_id", "created_at"),
        unredacted_index("raw_events"),
    )

    kind: Mapped[str] = mapped_column(sa.String(16))  # status | inbound | sendgrid
    dedupe_key: Mapped[str] = mapped_column(sa.String(200))
    # {"form": [[k, v], ...], "query": [[k, v], ...]} as received (repeated keys kept), or {"events": [...]}
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    orphan: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # When the body retention replaced the payload (app/retention/service.py).
    redacted_at: Mapped[datetime | None] = mapped_column(nullable=True)


class InboundMessage(TenantOwned, Base):
    __tablename__ = "inbound_messages"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "message_sid"),
        # GET /v1/messages: one tenant's messages, newest first, by when they were received.
        sa.Index("ix_inbound_messages_tenant_received", "tenant_id", "received_at", "id"),
        sa.Index("ix_inbound_messages_tenant_created", "tenant_id", "created_at"),
        unredacted_index("inbound_messages"),
    )

    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True, index=True
    )
    message_sid: Mapped[str] = mapped_column(sa.String(64))
    from_address: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    to_address: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    body: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    media: Mapped[list[Any]]
    profile_name: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    wa_id: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    button_payload: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    keyword: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)  # stop | start
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the body retention emptied body, media and button_payload (app/retention/service.py).
    redacted_at: Mapped[datetime | None] = mapped_column(nullable=True)


class WebhookEndpoint(TenantOwned, Base):
    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(sa.String(2048))
    events: Mapped[list[Any]]
    secret_enc: Mapped[str] = mapped_column(sa.Text, info={"encrypted": True})
    status: Mapped[str] = mapped_column(sa.String(16), default="enabled")  # enabled | disabled
    failing_since: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookDelivery(TenantOwned, Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
        sa.Index("ix_webhook_deliveries_tenant_created", "tenant_id", "created_at"),
        unredacted_index("webhook_deliveries"),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(sa.String(64))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")  # pending | succeeded | failed
    attempt_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # When the body retention replaced the payload (app/retention/service.py).
    redacted_at: Mapped[datetime | None] = mapped_column(nullable=True)


class WebhookDeliveryAttempt(TenantOwned, Base):
    __tablename__ = "webhook_delivery_attempts"

    delivery_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    response_status: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    duration_ms: Mapped[int] = mapped_column(sa.Integer)
