from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TenantOwned, utcnow


class RoutingPolicy(TenantOwned, Base):
    """One document per tenant: default country, Messaging Service by country, fallback, keywords."""

    __tablename__ = "routing_policies"
    __table_args__ = (sa.UniqueConstraint("tenant_id"),)

    policy: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
