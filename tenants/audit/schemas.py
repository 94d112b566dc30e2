from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec


class AuditEntryOut(msgspec.Struct):
    id: uuid.UUID
    actor_type: str
    actor_id: str | None
    action: str
    target_type: str
    target_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None
    created_at: datetime


class AuditPage(msgspec.Struct):
    items: list[AuditEntryOut]
    next_cursor: str | None
