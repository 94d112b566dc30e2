"""Client API: the inbound WhatsApp messages of the caller's tenant, newest first."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter

from app.core.deps import DbSession
from app.core.errors import ValidationFailed
from app.core.pagination import page_of, paginate
from app.messages.repository import MAX_SEARCH, InboundMessageRepository
from app.messages.schemas import MessageOut, MessagePage
from app.webhooks.models import InboundMessage
from tenants.auth import Caller, require_scope


def _out(m: InboundMessage) -> MessageOut:
    return MessageOut(
        id=m.id,
        message_sid=m.message_sid,
        contact_id=m.contact_id,
        from_=m.from_address,
        to=m.to_address,
        body=m.body,
        media=list(m.media or []),
        profile_name=m.profile_name,
        wa_id=m.wa_id,
        button_payload=m.button_payload,
        keyword=m.keyword,
        received_at=m.received_at,
    )


def _utc(value: datetime | None) -> datetime | None:
    """A time without an offset is taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class MessagesController(Controller):
    path = "/v1/messages"
    tags = ["messages"]
    security = [{"ApiKey": []}]

    @get(
        "/",
        # Live personal data: a test key is refused (there are no test-mode inbound messages).
        dependencies={"principal": require_scope("notifications:read")},
        summary="List inbound WhatsApp messages, newest first",
        description="Filters: `contact` (a contact id), `since` (inclusive) and `until` (exclusive) on when the "
        "message was received, `q` (a case-insensitive substring of the body). Paged with `cursor` and `limit`.",
    )
    async def list(
        self,
        principal: Caller,
        db_session: DbSession,
        contact: uuid.UUID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        q: Annotated[str | None, Parameter(max_length=MAX_SEARCH)] = None,
        cursor: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    ) -> MessagePage:
        since, until = _utc(since), _utc(until)
        if since is not None and until is not None and since >= until:
            raise ValidationFailed("since must be before until", pointer="/since")
        if q is not None and "\x00" in q:
            raise ValidationFailed("q must not contain NUL characters", pointer="/q")
        repo = InboundMessageRepository(db_session, principal.tenant)
        stmt = repo.filtered(contact_id=contact, since=since, until=until, search=q or None)
        rows = await repo.all(paginate(stmt, InboundMessage, cursor, limit, at="received_at"))
        return MessagePage(**page_of(rows, limit, _out, at="received_at"))


ROUTES = [MessagesController]
