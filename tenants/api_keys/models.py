from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TenantOwned


class ApiKey(TenantOwned, Base):
    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(sa.String(100))
    environment: Mapped[str] = mapped_column(sa.String(4))  # live | test
    public_id: Mapped[str] = mapped_column(sa.String(32), unique=True)
    # HMAC-SHA256(pepper, secret); the secret itself is shown once and never stored.
    secret_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    scopes: Mapped[list[Any]]
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
