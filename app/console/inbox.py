"""Console: inbound WhatsApp messages and usage, over the same reads as GET /v1/messages and
GET /v1/usage (app/messages, app/usage): the same filters, the same checks, the same tenant scoping.

Inbound messages are live personal data: as on the API, a test key sees none.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get

from app.console.common import HANDLERS, signed_in, uuid_or_404, when
from app.core.db import utcnow
from app.core.deps import DbSession
from app.core.errors import ValidationFailed
from app.core.pagination import page_of, paginate
from app.messages.controllers import _utc
from app.messages.repository import MAX_SEARCH, InboundMessageRepository
from app.usage import service as usage
from app.webhooks.models import InboundMessage

PAGE = 50


class InboxPages(Controller):
    path = "/console"
    include_in_schema = False
    exception_handlers = HANDLERS

    @get("/messages")
    async def messages(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request, db_session)
        q = {k: (request.query_params.get(k) or "").strip() for k in ("contact", "since", "until", "q")}
        if ctx.principal.environment != "live":
            return ctx.view("messages.html", rows=[], q=q, next_cursor=None, test_key=True, error=None)
        since, until = _utc(when(q["since"])), _utc(when(q["until"]))
        error = None
        if since is not None and until is not None and since >= until:
            error = "since must be before until"
        if len(q["q"]) > MAX_SEARCH or "\x00" in q["q"]:
            error = f"the search is at most {MAX_SEARCH} characters, without NUL"
        if error:
            return ctx.view(
                "messages.html", status_code=422, rows=[], q=q, next_cursor=None, test_key=False, error=error
            )
        repo = InboundMessageRepository(db_session, ctx.tenant)
        stmt = repo.filtered(
            contact_id=uuid_or_404(q["contact"]) if q["contact"] else None,
            since=since,
            until=until,
            search=q["q"] or None,
        )
        cursor = request.query_params.get("cursor")
        rows = await repo.all(paginate(stmt, InboundMessage, cursor, PAGE, at="received_at"))
        page = page_of(rows, PAGE, lambda m: m, at="received_at")
        return ctx.view(
            "messages.html", rows=page["items"], q=q, next_cursor=page["next_cursor"], test_key=False, error=None
        )

    @get("/usage")
    async def usage(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request, db_session)
        q = {k: (request.query_params.get(k) or "").strip()[:7] for k in ("from", "to")}
        try:
            wanted = usage.months(None, q["from"] or None, q["to"] or None, utcnow())
        except ValidationFailed as exc:
            return ctx.view("usage.html", status_code=422, months=[], q=q, error=exc.detail, counted=usage.COUNTED)
        found = [await usage.month_counts(db_session, ctx.tenant, ctx.principal.environment, m) for m in wanted]
        return ctx.view("usage.html", months=found, q=q, error=None, counted=usage.COUNTED)


ROUTES = [InboxPages]
