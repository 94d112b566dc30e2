from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, IdMixin, utcnow


class Tenant(IdMixin, Base):
    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(sa.String(200))
    slug: Mapped[str] = mapped_column(sa.String(63), unique=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="active")  # active | suspended
    # Per-tenant API request budget, set by the operator; None means the platform default.
    api_rate_per_second: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    # Quotas (tenants.accounts.quotas); None means the platform default.
    max_webhook_endpoints: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    max_templates: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    max_contacts: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    # Retention, set by the tenant admin (tenants.accounts.retention); None means the platform default.
    body_retention_days: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    metadata_retention_days: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
