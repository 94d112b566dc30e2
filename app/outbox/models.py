from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TenantOwned, utcnow


class OutboxItem(TenantOwned, Base):
    """A unit of work recorded in the same transaction as the change that needs it.

    The queue message carries only `ref_id`; the sweeper re-enqueues rows left pending, so a job
    lost with Redis is found again. One row per (kind, ref): a retry reschedules the same row.
    """

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_pending", "state", "available_at"), sa.UniqueConstraint("kind", "ref_id"))

    kind: Mapped[str] = mapped_column(sa.String(32))
    ref_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    state: Mapped[str] = mapped_column(sa.String(12), default="pending")  # pending | done
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
