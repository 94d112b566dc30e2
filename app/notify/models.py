"""Notifications, their routing decisions, attempts per channel, provider events, idempotency keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TenantOwned, unredacted_index, utcnow


class Notification(TenantOwned, Base):
    __tablename__ = "notifications"
    __table_args__ = (
        sa.Index("ix_notifications_tenant_created", "tenant_id", "created_at", "id"),
        unredacted_index("notifications"),
    )

    contact_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    # What the client asked for, as asked: the addresses in force when it was accepted.
    recipient: Mapped[dict[str, Any]]
    template_key: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    variables: Mapped[dict[str, Any]]
    text: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    media_url: Mapped[str | None] = mapped_column(sa.String(2048), nullable=True)
    channels: Mapped[list[Any]]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata")
    environment: Mapped[str] = mapped_column(sa.String(4), default="live")  # test keys reach no provider
    # "client" for the API; "opt_out_confirmation" is the reply to a STOP, which must reach a suppressed person.
    purpose: Mapped[str] = mapped_column(sa.String(24), default="client")
    status: Mapped[str] = mapped_column(sa.String(16), default="accepted")
    channel: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # When the body retention emptied variables, text and media_url (app/retention/service.py).
    redacted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The values of the template's sensitive variables, AES-GCM sealed (a JSON object), kept only until the
    # notification is final; `variables` holds a placeholder for each (app/notify/sensitive.py).
    sealed_variables: Mapped[str | None] = mapped_column(sa.Text, nullable=True, info={"encrypted": True})


class Decision(TenantOwned, Base):
    """The routing trail as data: why WhatsApp, why a template, why the fallback."""

    __tablename__ = "notification_decisions"
    __table_args__ = (sa.Index("ix_notification_decisions_notification", "notification_id", "created_at"),)

    notification_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("notifications.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(sa.String(32))
    result: Mapped[str] = mapped_column(sa.String(32))
    detail: Mapped[str | None] = mapped_column(sa.Text, nullable=True)


class Attempt(TenantOwned, Base):
    __tablename__ = "attempts"
    __table_args__ = (
        sa.Index("ix_attempts_notification", "notification_id"),
        sa.UniqueConstraint("provider", "provider_message_id"),
        # Email fallback happens at most once per notification, whoever races to it.
        sa.Index(
            "uq_attempts_one_email",
            "notification_id",
            unique=True,
            postgresql_where=sa.text("channel = 'email'"),
            sqlite_where=sa.text("channel = 'email'"),
        ),
        sa.Index("ix_attempts_open", "status", "updated_at"),
        # GET /v1/usage reads one tenant's attempts by the month they were handed to the provider.
        sa.Index("ix_attempts_tenant_sending", "tenant_id", "sending_started_at"),
    )

    notification_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("notifications.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(sa.String(16))  # whatsapp | email
    kind: Mapped[str] = mapped_column(sa.String(16))  # session | template | media | email
    provider: Mapped[str] = mapped_column(sa.String(16))  # twilio | sendgrid | simulated
    sender: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)
    # sending -> queued/accepted -> sent -> delivered -> read; failed | undelivered are terminal.
    # unknown: a send whose answer was lost (timeout, dropped connection); Twilio may have it.
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    tries: Mapped[int] = mapped_column(sa.Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    error_class: Mapped[str | None] = mapped_column(sa.String(24), nullable=True)
    error_message: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    # The provider's link to the error's documentation (Twilio's more_info).
    error_more_info: Mapped[str | None] = mapped_column(sa.String(512), nullable=True)
    # Twilio's id of the last create request for this attempt (Twilio-Request-Id), refused or accepted.
    provider_request_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    # What GET /v1/usage counts it under, fixed when it is sent (app/usage/service.py): the template's
    # category (UTILITY, MARKETING, ...), "session", "unknown" or "none" (email); the recipient's country.
    usage_category: Mapped[str | None] = mapped_column(sa.String(24), nullable=True)
    recipient_country: Mapped[str | None] = mapped_column(sa.String(3), nullable=True)
    possible_duplicate: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # Looks at Twilio's list of messages for an `unknown` (ambiguous) send that failed: bounded (app/notify/ambiguity.py).
    checks: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    sending_started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ProviderEvent(TenantOwned, Base):
    """Every provider event is kept in the attempt's timeline, even one that changes nothing."""

    __tablename__ = "provider_events"
    __table_args__ = (sa.Index("ix_provider_events_attempt", "attempt_id", "created_at"),)

    attempt_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("attempts.id", ondelete="CASCADE"), nullable=True
    )
    raw_event_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, nullable=True)
    provider: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(32))
    error_code: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    applied: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyRecord(TenantOwned, Base):
    __tablename__ = "idempotency_keys"
    # The environment is part of the key: a test key must never get a live response replayed.
    __table_args__ = (sa.UniqueConstraint("tenant_id", "environment", "key"),)

    environment: Mapped[str] = mapped_column(sa.String(4), server_default="live")  # live | test
    key: Mapped[str] = mapped_column(sa.String(255))
    request_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    state: Mapped[str] = mapped_column(sa.String(12), default="in_flight")  # in_flight | completed
    response_status: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    expires_at: Mapped[datetime] = mapped_column()


class WhatsAppConversation(TenantOwned, Base):
    """One business-initiated conversation a WhatsApp sender opened with a contact: what Meta's messaging-limit
    tier counts (distinct people per sender in a rolling 24 h; app/notify/tiers.py, docs/tiers.md). One row per
    (sender, contact), its `opened_at` moved forward when a later one opens after the 24 h have passed."""

    __tablename__ = "whatsapp_conversations"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "sender", "contact_id"),
        sa.Index("ix_whatsapp_conversations_sender_opened", "tenant_id", "sender", "opened_at"),
    )

    sender: Mapped[str] = mapped_column(sa.String(64))
    contact_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    opened_at: Mapped[datetime] = mapped_column()


class WhatsAppSenderLimit(TenantOwned, Base):
    """What a 63018 taught us of a sender's tier: lower than the policy says. It stands while the policy still
    says `configured_tier` for the sender (the tenant setting another tier replaces it)."""

    __tablename__ = "whatsapp_sender_limits"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "sender"),)

    sender: Mapped[str] = mapped_column(sa.String(64))
    configured_tier: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)  # None: unlimited
    assumed_tier: Mapped[int] = mapped_column(sa.Integer)
    distinct_at_cap: Mapped[int] = mapped_column(sa.Integer)
    capped_at: Mapped[datetime] = mapped_column()
