"""Operator API twin of `notifygw replay --message-sid`: apply one message's stored callbacks again."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from litestar import Controller, post

from app.core.deps import DbSession
from app.core.errors import NotFound
from app.webhooks import replay
from tenants.auth import Caller, require_operator

MessageSid = Annotated[str, msgspec.Meta(pattern=replay.MESSAGE_SID.pattern, description="SM or MM and 32 hex digits")]


class ReplayIn(msgspec.Struct, forbid_unknown_fields=True):
    message_sid: MessageSid
    tenant_id: uuid.UUID | None = None  # narrows the search to one tenant's events


class ReplayOut(msgspec.Struct):
    message_sid: str
    replayed: int  # stored callbacks queued for processing again
    event_ids: list[uuid.UUID]


class OperatorReplayController(Controller):
    path = "/operator/v1/replays"
    tags = ["operator"]
    security = [{"OperatorToken": []}]
    dependencies = {"principal": require_operator()}

    @post(
        "/",
        status_code=200,
        summary="Apply a message's stored Twilio callbacks again (idempotent; never resends)",
        description="Finds the stored status and inbound callbacks whose form names `message_sid` and queues "
        "their processing again. What was already applied changes nothing; a callback whose processing was "
        "lost is applied now. 404 when no stored callback names it (never received, or its payload was "
        "redacted by retention).",
    )
    async def replay(self, data: ReplayIn, principal: Caller, db_session: DbSession) -> ReplayOut:
        events = await replay.events_of_message(db_session, data.message_sid, data.tenant_id)
        if not events:
            raise NotFound(f"no stored callback names {data.message_sid}")
        await replay.requeue(db_session, events)
        return ReplayOut(data.message_sid, len(events), [event_id for event_id, _ in events])


ROUTES = [OperatorReplayController]
