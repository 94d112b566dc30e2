from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TenantOwned, utcnow


class Template(TenantOwned, Base):
    __tablename__ = "templates"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "key"),)

    key: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    default_locale: Mapped[str] = mapped_column(sa.String(35))
    # {"en": {"whatsapp": {...}, "email": {...}}, "pt-BR": {...}}: read whole, validated on write.
    locales: Mapped[dict[str, Any]]
    # What Twilio last reported of each ContentSid the locales name, {"HX...": {"approval_status": ...,
    # "twilio_status", "category", "language", "variables": [...], "rejection_reason", "synced_at"}}: kept
    # on the row (written at create/update and by every sync) so that routing reads it with the template,
    # with no query of its own. A ContentSid not in it was never checked against Twilio (no credentials yet).
    approvals: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Variables whose values are sealed, never stored or shown in clear (an OTP code): app/notify/sensitive.py.
    sensitive_variables: Mapped[list[Any]] = mapped_column(default=list, server_default=sa.text("'[]'"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TwilioContent(TenantOwned, Base):
    """One Content template of the tenant's Twilio account, as GET /v1/ContentAndApprovals last listed it."""

    __tablename__ = "twilio_contents"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "content_sid"),)

    content_sid: Mapped[str] = mapped_column(sa.String(34))
    account_sid: Mapped[str] = mapped_column(sa.String(34))  # the account that listed it
    friendly_name: Mapped[str | None] = mapped_column(sa.String(256), nullable=True)
    language: Mapped[str | None] = mapped_column(sa.String(35), nullable=True)
    category: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    # Ours (channels/twilio_content.py APPROVAL_STATUSES, or unknown), and Twilio's own string beside it.
    approval_status: Mapped[str] = mapped_column(sa.String(16))
    twilio_status: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    rejection_reason: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    variables: Mapped[dict[str, Any]]  # Twilio's placeholders and sample values: {"1": "Customer_Name"}
    types: Mapped[list[Any]]  # ["twilio/text"]
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContentSync(TenantOwned, Base):
    """When the tenant's Content list was last read, how it went, and when it is next due (periodic sync)."""

    __tablename__ = "twilio_content_syncs"
    __table_args__ = (sa.UniqueConstraint("tenant_id"),)

    account_sid: Mapped[str | None] = mapped_column(sa.String(34), nullable=True)
    synced_at: Mapped[datetime | None] = mapped_column(nullable=True)  # the last sync that succeeded
    attempted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    due_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    items: Mapped[int] = mapped_column(sa.Integer, default=0)
    error: Mapped[str | None] = mapped_column(sa.String(300), nullable=True)
