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

    `tries` counts the runs that failed and the sweeps that had to resend it, since the last run
    that made progress; past MAX_TRIES the row stops in `dead` (the dead letter: no more runs until
    an operator retries it). `held` is work waiting for its tenant's reactivation: never a try.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index("ix_outbox_pending", "state", "available_at"),
        sa.UniqueConstraint("kind", "ref_id"),
        # The webhook drain's claim: each tenant's oldest waiting events (app/webhooks/drain.py).
        sa.Index(
            "ix_outbox_pending_by_tenant",
            "kind",
            "tenant_id",
            "available_at",
            postgresql_where=sa.text("state = 'pending'"),
            sqlite_where=sa.text("state = 'pending'"),
        ),
        sa.Index(
            "ix_outbox_dead",
            "dead_at",
            postgresql_where=sa.text("state = 'dead'"),
            sqlite_where=sa.text("state = 'dead'"),
        ),
    )

    kind: Mapped[str] = mapped_column(sa.String(32))
    ref_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    state: Mapped[str] = mapped_column(sa.String(12), default="pending")  # pending | held | done | dead
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(nullable=True)
    tries: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    # "ClassName: message" with quoted values, emails and long digit runs scrubbed (no personal data).
    last_error: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    dead_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
