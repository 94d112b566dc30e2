"""Cursor pagination over (created_at, id), newest first: stable under concurrent inserts.

`at` names another time column to page on (inbound messages page on `received_at`)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_

from app.core.errors import ValidationFailed

MAX_LIMIT = 200


def encode_cursor(created_at: datetime, id_: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{id_}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, ident = raw.partition("|")
        return datetime.fromisoformat(stamp), uuid.UUID(ident)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("cursor is not one this API issued", pointer="/cursor") from None


def paginate(stmt: Select[Any], model: Any, cursor: str | None, limit: int, *, at: str = "created_at") -> Select[Any]:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}", pointer="/limit")
    column = getattr(model, at)
    if cursor:
        stamp, ident = decode_cursor(cursor)
        stmt = stmt.where(or_(column < stamp, and_(column == stamp, model.id < ident)))
    return stmt.order_by(column.desc(), model.id.desc()).limit(limit + 1)


def page_of(rows: Sequence[Any], limit: int, render: Any, *, at: str = "created_at") -> dict[str, Any]:
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [render(r) for r in rows],
        "next_cursor": encode_cursor(getattr(rows[-1], at), rows[-1].id) if more and rows else None,
    }
