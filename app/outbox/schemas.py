"""Response types of the operator's dead-letter API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from app.outbox.models import OutboxItem


class DeadLetterOut(msgspec.Struct):
    id: uuid.UUID
    tenant_id: uuid.UUID
    kind: str
    ref_id: uuid.UUID
    state: str
    tries: int
    last_error: str | None
    dead_at: datetime | None
    created_at: datetime


class DeadLetterPage(msgspec.Struct):
    items: list[DeadLetterOut]
    next_cursor: str | None


def render(item: OutboxItem) -> DeadLetterOut:
    return DeadLetterOut(
        id=item.id,
        tenant_id=item.tenant_id,
        kind=item.kind,
        ref_id=item.ref_id,
        state=item.state,
        tries=item.tries,
        last_error=item.last_error,
        dead_at=item.dead_at,
        created_at=item.created_at,
    )
