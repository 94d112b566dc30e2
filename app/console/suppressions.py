"""Console: suppressions. The tenant-wide list, as GET /v1/suppressions: newest first, filtered by
channel and by one person (phone, BSUID or email), 50 a page with "Older"; each row links to its
contact's page and has Lift. The forms of a contact's page post here too: add a suppression
(POST /v1/suppressions) and lift one (DELETE /v1/suppressions/{id}); a Lift comes back to the list when
sent from it, else to the contact's page. One controller for every /console/suppressions route
(Litestar refuses one path shared by two controllers).

The list is the very function behind the API's (tenants/contacts/controllers.py `list_suppressions`),
so the same filters, the same 422s and the same tenant scoping apply. Suppressions name people: live
personal data, which a test key does not read (as on the API).
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from app.console import contacts as contact_pages
from app.console.common import HANDLERS, changing, signed_in, uuid_or_404
from app.core.deps import DbSession
from app.core.errors import ValidationFailed
from app.core.pagination import page_of
from tenants.contacts import controllers as suppression_api
from tenants.contacts import service as contacts
from tenants.contacts.models import ContactIdentifier
from tenants.contacts.repository import IdentifierRepository, SuppressionRepository
from tenants.contacts.schemas import SuppressionIn

PAGE = 50
CHANNELS = ("whatsapp", "email")
FILTERS = ("channel", "phone", "whatsapp_user_id", "email")
BACK = "/console/suppressions"  # where a Lift sent from this page returns


async def _addresses(db: DbSession, tenant_id: uuid.UUID, contact_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Each contact's current address to show (phone, else BSUID, else email): one query for the page."""
    if not contact_ids:
        return {}
    repo = IdentifierRepository(db, tenant_id)
    found: dict[uuid.UUID, list[ContactIdentifier]] = {}
    for row in await repo.all(repo.statement().where(ContactIdentifier.contact_id.in_(contact_ids))):
        found.setdefault(row.contact_id, []).append(row)
    out = {}
    for cid, idents in found.items():
        shown = next((v for k in ("phone", "bsuid", "email") if (v := contacts.current(idents, k))), None)
        if shown:
            out[cid] = shown
    return out


class SuppressionPages(Controller):
    path = "/console"
    include_in_schema = False
    exception_handlers = HANDLERS

    @get("/suppressions")
    async def suppressions(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request, db_session)
        ctx.live_only(reading=True)  # live personal data (GET /v1/suppressions refuses a test key too)
        q = {k: (request.query_params.get(k) or "").strip()[:320] for k in FILTERS}
        try:
            rows = await suppression_api.list_suppressions(
                db_session,
                ctx.tenant,
                **{k: q[k] or None for k in FILTERS},
                cursor=request.query_params.get("cursor") or None,
                limit=PAGE,
            )
        except ValidationFailed as exc:
            return ctx.view(
                "suppressions.html",
                status_code=422,
                rows=[],
                q=q,
                channels=CHANNELS,
                addresses={},
                next_cursor=None,
                back=BACK,
                error=exc.detail,
            )
        page = page_of(rows, PAGE, lambda s: s)
        addresses = await _addresses(db_session, ctx.tenant, list({s.contact_id for s in page["items"]}))
        return ctx.view(
            "suppressions.html",
            rows=page["items"],
            q=q,
            channels=CHANNELS,
            addresses=addresses,
            next_cursor=page["next_cursor"],
            back=BACK,
            error=None,
        )

    @post("/suppressions", status_code=303)
    async def add_suppression(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        ctx, form = await changing(request, db_session, live=True)
        body = {
            **await contact_pages.identifiers(ctx, db_session, form),
            "channel": form.get("channel", ""),
            "reason": form.get("reason", "").strip(),
            "source": "console",
        }
        try:
            row = await suppression_api.add_suppression(
                db_session, ctx.tenant, msgspec.convert(body, SuppressionIn), actor=ctx.principal
            )
        except (msgspec.ValidationError, ValidationFailed) as exc:
            await db_session.rollback()
            return await contact_pages.refused(ctx, db_session, form, exc)
        return Redirect(f"/console/contacts/{row.contact_id}", status_code=303)

    @post("/suppressions/{suppression_id:str}/lift", status_code=303)
    async def lift(self, suppression_id: str, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        ctx, form = await changing(request, db_session, live=True)
        row = await SuppressionRepository(db_session, ctx.tenant).get(uuid_or_404(suppression_id), what="suppression")
        await contacts.lift(db_session, ctx.tenant, row, actor=ctx.principal)
        if form.get("next") == BACK:  # sent from the suppressions list; nothing else, so no open redirect
            return Redirect(BACK, status_code=303)
        return Redirect(f"/console/contacts/{row.contact_id}", status_code=303)


ROUTES = [SuppressionPages]
