from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Select

from app.core.repository import TenantRepository
from app.webhooks.models import InboundMessage

MAX_SEARCH = 200


def _like_pattern(text: str) -> str:
    """`%text%` with LIKE's own wildcards escaped (escape character `\\`), so `50%` means 50%."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class InboundMessageRepository(TenantRepository[InboundMessage]):
    model = InboundMessage

    def filtered(
        self,
        *,
        contact_id: uuid.UUID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        search: str | None = None,
    ) -> Select[InboundMessage]:
        """The tenant's messages: of one contact, received in [since, until), whose body contains `search`
        (any case)."""
        stmt = self.statement()
        if contact_id is not None:
            stmt = stmt.where(InboundMessage.contact_id == contact_id)
        if since is not None:
            stmt = stmt.where(InboundMessage.received_at >= since)
        if until is not None:
            stmt = stmt.where(InboundMessage.received_at < until)
        if search:
            stmt = stmt.where(InboundMessage.body.ilike(_like_pattern(search), escape="\\"))
        return stmt
