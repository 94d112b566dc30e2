"""Provider credentials. Secret columns hold AES-GCM ciphertext bound to (tenant, table, column)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TenantOwned, utcnow


class TwilioCredential(TenantOwned, Base):
    __tablename__ = "twilio_credentials"
    __table_args__ = (sa.UniqueConstraint("tenant_id"),)

    # Not secret, and unique across tenants: webhooks find their tenant by it (one indexed lookup).
    account_sid: Mapped[str] = mapped_column(sa.String(34), unique=True)
    auth_token_enc: Mapped[str] = mapped_column(sa.Text, info={"encrypted": True})
    api_key_sid: Mapped[str | None] = mapped_column(sa.String(34), nullable=True)
    api_key_secret_enc: Mapped[str | None] = mapped_column(sa.Text, nullable=True, info={"encrypted": True})
    messaging_service_sid: Mapped[str | None] = mapped_column(sa.String(34), nullable=True)
    whatsapp_from: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="valid")  # valid | invalid
    status_reason: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    # Bumped on every change: caches and SDK clients are keyed by (tenant, version).
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SendgridCredential(TenantOwned, Base):
    __tablename__ = "sendgrid_credentials"
    __table_args__ = (sa.UniqueConstraint("tenant_id"),)

    api_key_enc: Mapped[str] = mapped_column(sa.Text, info={"encrypted": True})
    from_email: Mapped[str] = mapped_column(sa.String(254))
    from_name: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    # A public key: stored in clear on purpose.
    event_webhook_public_key: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="valid")
    status_reason: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
