"""Console: contacts. Search by phone, email or BSUID; a person's identifiers, consent ledger,
suppressions and 24 h window; record consent, and erase a person after a confirmation step. The
contact page's suppression forms (add, lift) post to /console/suppressions, which
app/console/suppressions.py owns with the tenant-wide list (Litestar takes one controller per path).

Reads go through tenants/people (as GET /v1/contacts); changes through the very functions behind
POST /v1/consents, POST /v1/suppressions, DELETE /v1/suppressions/{id} and DELETE /v1/contacts/{id}
(app/erasure), so the same checks, tenant scoping and audit entries apply.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from app.console.common import HANDLERS, Ctx, changing, field_errors, signed_in, uuid_or_404
from app.core.db import utcnow
from app.core.deps import DbSession
from app.core.errors import ValidationFailed
from app.erasure import service as erasure
from app.notify.controllers import _contact_for
from tenants.contacts import controllers as consent_api
from tenants.contacts import service as contacts
from tenants.contacts.repository import ConsentRepository
from tenants.contacts.schemas import ConsentIn
from tenants.people import service as people

PAGE = 50
IDENTIFIER_FIELDS = ("phone", "whatsapp_user_id", "email")
CONFIRM_WORD = "erase"


async def identifiers(ctx: Ctx, db: DbSession, form: dict[str, str]) -> dict[str, str]:
    """Who the form is about: the typed identifiers, or (from a contact's page) that contact's current
    address on the form's channel."""
    if not form.get("contact"):
        return {k: form[k].strip() for k in IDENTIFIER_FIELDS if form.get(k, "").strip()}
    v = await people.view(db, ctx.tenant, uuid_or_404(form["contact"]))  # another tenant's contact: 404
    if form.get("channel") == "email":
        found = {"email": contacts.current(v.identifiers, "email")}
    else:
        phone = contacts.current(v.identifiers, "phone")
        found = {"phone": phone} if phone else {"whatsapp_user_id": contacts.current(v.identifiers, "bsuid")}
    return {k: value for k, value in found.items() if value}


def _errors_text(exc: Exception) -> str:
    return "; ".join(f"{p}: {m}" if p != "/" else m for p, m in field_errors(exc).items())


async def _list_page(
    ctx: Ctx, db: DbSession, q: str, *, status_code: int = 200, error: str | None = None, form: Any = None
) -> Response[str]:
    only = await _contact_for(db, ctx.tenant, q) if q else None
    view = await people.page(db, ctx.tenant, only=only, filtered=bool(q), cursor=None, limit=PAGE)
    rows = [
        {
            "c": c,
            "phone": contacts.current(view.identifiers[c.id], "phone"),
            "bsuid": contacts.current(view.identifiers[c.id], "bsuid"),
            "email": contacts.current(view.identifiers[c.id], "email"),
            "suppressed": [s.channel for s in view.suppressions[c.id]],
            "window_open": c.id in view.window_open,
        }
        for c in view.rows
    ]
    return ctx.view("contacts.html", status_code=status_code, rows=rows, q=q, error=error, form=form or {})


async def contact_page(
    ctx: Ctx, db: DbSession, contact_id: str, *, status_code: int = 200, error: str | None = None
) -> Response[str]:
    v = await people.view(db, ctx.tenant, uuid_or_404(contact_id))
    ledger = await ConsentRepository(db, ctx.tenant).history(v.contact.id)
    now = utcnow()
    windows = [
        {
            "w": w,
            "expires": people.window_expires(w.last_inbound_at),
            "open": now < people.window_expires(w.last_inbound_at),
        }
        for w in v.windows
    ]
    current = {k: contacts.current(v.identifiers, k) for k in ("phone", "bsuid", "email")}
    return ctx.view(
        "contact.html",
        status_code=status_code,
        v=v,
        ledger=ledger,
        windows=windows,
        current=current,
        error=error,
        erased=v.contact.erased_at is not None,
    )


async def refused(ctx: Ctx, db: DbSession, form: dict[str, str], exc: Exception) -> Response[str]:
    """A refused form is shown again where it was sent from, with the API's reason."""
    if form.get("contact"):
        return await contact_page(ctx, db, form["contact"], status_code=422, error=_errors_text(exc))
    return await _list_page(ctx, db, "", status_code=422, error=_errors_text(exc), form=form)


class ContactPages(Controller):
    path = "/console"
    include_in_schema = False
    exception_handlers = HANDLERS

    @get("/contacts")
    async def contacts(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request, db_session)
        ctx.live_only(reading=True)  # live personal data (GET /v1/contacts refuses a test key too)
        return await _list_page(ctx, db_session, (request.query_params.get("q") or "").strip()[:320])

    @get("/contacts/{contact_id:str}")
    async def contact(self, contact_id: str, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request, db_session)
        ctx.live_only(reading=True)
        return await contact_page(ctx, db_session, contact_id)

    @post("/consents", status_code=303)
    async def add_consent(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        ctx, form = await changing(request, db_session, live=True)
        body = {
            **await identifiers(ctx, db_session, form),
            "channel": form.get("channel", ""),
            "status": form.get("status", ""),
            "source": form.get("source", "").strip() or "console",
            **({"proof": form["proof"].strip()} if form.get("proof", "").strip() else {}),
        }
        try:
            contact = await consent_api.record_consent(
                db_session, ctx.tenant, msgspec.convert(body, ConsentIn), actor=ctx.principal
            )
        except (msgspec.ValidationError, ValidationFailed) as exc:
            await db_session.rollback()
            return await refused(ctx, db_session, form, exc)
        return Redirect(f"/console/contacts/{contact.id}", status_code=303)

    @get("/contacts/{contact_id:str}/erase")
    async def erase_confirm(
        self, contact_id: str, request: Request[Any, Any, Any], db_session: DbSession
    ) -> Response[str]:
        ctx = await signed_in(request, db_session)
        ctx.live_only(reading=True)
        v = await people.view(db_session, ctx.tenant, uuid_or_404(contact_id))
        return ctx.view("contact_erase.html", v=v, word=CONFIRM_WORD, error=None)

    @post("/contacts/{contact_id:str}/erase", status_code=303)
    async def erase(self, contact_id: str, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        ctx, form = await changing(request, db_session, live=True)
        v = await people.view(db_session, ctx.tenant, uuid_or_404(contact_id))  # 404 before anything else
        if form.get("confirm", "").strip().lower() != CONFIRM_WORD:
            return ctx.view(
                "contact_erase.html", status_code=422, v=v, word=CONFIRM_WORD, error=f"Type {CONFIRM_WORD} to confirm."
            )
        await erasure.erase(db_session, ctx.tenant, v.contact.id, actor=ctx.principal)
        return Redirect(f"/console/contacts/{v.contact.id}", status_code=303)


ROUTES = [ContactPages]
