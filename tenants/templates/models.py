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
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
