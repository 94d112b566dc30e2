"""Receiving provider callbacks: parse, authenticate, dedupe, persist, queue, answer.

Nothing here processes an event: that happens in a worker, from the stored raw event, so the
handler answers in milliseconds and a replay runs exactly the same code.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import (
    fetch_autocommitted,
    insert_with,
    insert_with_statement,
    is_postgresql,
    session_factory,
    table_of,
    utcnow,
)
from app.core.errors import AppError, Forbidden
from app.core.queue import declared_named, defer, nudge
from app.outbox import service as outbox
from app.webhooks.fields import fit_identifier
from app.webhooks.models import RawEvent

PROCESS = "event.process"
# The actor that applies stored events in batches (app/webhooks/drain.py); named, since it imports this module.
DRAIN_ACTOR = "webhooks.drain_events"
_RAW_EVENTS = table_of(RawEvent)
_DEDUPE_KEY = ["tenant_id", "kind", "dedupe_key"]  # RawEvent's unique key: a duplicate callback
# A duplicate inserts neither row; the outbox row's id comes back when the event is new.
_UNLESS_DUPLICATE: dict[str, Any] = {"first_do_nothing_on": _DEDUPE_KEY, "returning": outbox.TABLE.c.id}


class MalformedCallback(AppError):
    status_code = 400
    title = "Malformed callback"
    type_slug = "malformed-callback"


class InvalidSignature(Forbidden):
    """One answer for an unknown AccountSid and a bad signature, so tenants can't be enumerated."""

    title = "Signature invalid"
    type_slug = "signature-invalid"

    def __init__(self) -> None:
        super().__init__("the request signature does not verify")


def parse_form(body: bytes) -> list[tuple[str, str]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedCallback("the body is not UTF-8") from None
    if "\x00" in text:
        raise MalformedCallback("the body contains NUL characters")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=500)
    except ValueError:
        raise MalformedCallback("the body is not application/x-www-form-urlencoded") from None
    if any("\x00" in k or "\x00" in v for k, v in pairs):
        raise MalformedCallback("the form contains NUL characters")
    return pairs


def first(pairs: list[tuple[str, str]] | list[list[str]], name: str) -> str | None:
    return next((v for k, v in pairs if k == name), None)


async def store(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    kind: str,
    dedupe_key: str,
    payload: dict[str, Any],
) -> bool:
    """Persist the raw event and queue its processing, in this session's transaction; False when it
    is a duplicate (nothing queued). ON CONFLICT DO NOTHING tells a duplicate without a savepoint.

    The job sent after commit is a nudge to the drain, which applies whatever events are waiting in
    a batch; the outbox row stays the record (the sweeper resends it)."""
    stored = await insert_with(session, *_rows(tenant_id, kind, dedupe_key, payload), **_UNLESS_DUPLICATE)
    if stored:
        defer(session, declared_named(DRAIN_ACTOR), coalesce=True)
    return bool(stored)


async def store_received(tenant_id: uuid.UUID, kind: str, dedupe_key: str, payload: dict[str, Any]) -> bool:
    """`store` for a callback being answered, in a write of its own: on PostgreSQL one autocommitted
    statement, the event and its outbox row together, on a connection held for that statement alone
    (app/core/db.py `fetch_autocommitted`); the nudge goes once it is stored. SQLite: a session of its own."""
    if not is_postgresql():
        async with session_factory()() as session:
            stored = await store(session, tenant_id, kind, dedupe_key, payload)
            await session.commit()
        return stored
    stmt, params = insert_with_statement(*_rows(tenant_id, kind, dedupe_key, payload), **_UNLESS_DUPLICATE)
    if not await fetch_autocommitted(stmt, params):
        return False
    nudge(declared_named(DRAIN_ACTOR))
    return True


def _rows(
    tenant_id: uuid.UUID, kind: str, dedupe_key: str, payload: dict[str, Any]
) -> tuple[tuple[Table, dict[str, Any]], Table, list[dict[str, Any]]]:
    """`insert_with`'s arguments: the raw event, then its outbox row, every column given (a statement
    inside a CTE gets no defaults)."""
    event_id, now = uuid.uuid4(), utcnow()
    event = {
        "id": event_id,
        "tenant_id": tenant_id,
        "kind": kind,
        "dedupe_key": fit_identifier(dedupe_key, RawEvent.dedupe_key),
        "payload": payload,
        "orphan": False,
        "received_at": now,
        "processed_at": None,
        "redacted_at": None,
        "created_at": now,
    }
    return (_RAW_EVENTS, event), outbox.TABLE, [outbox.new_row(tenant_id, PROCESS, event_id, now)]
