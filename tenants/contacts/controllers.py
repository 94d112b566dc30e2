"""Consent ledger and suppression list (scope admin; every change audited)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.params import Parameter

from app.core.deps import DbSession
from app.core.errors import NotFound
from app.core.pagination import page_of, paginate
from tenants.auth import Caller, require_scope
from tenants.contacts import service
from tenants.contacts.lookup import from_fields
from tenants.contacts.models import ConsentEntry, Suppression
from tenants.contacts.repository import ConsentRepository, SuppressionRepository
from tenants.contacts.schemas import (
    ConsentEntryOut,
    ConsentIn,
    ConsentStateOut,
    SuppressionIn,
    SuppressionOut,
    SuppressionPage,
)
from tenants.routing.service import get_policy


def render_consent(e: ConsentEntry) -> ConsentEntryOut:
    return ConsentEntryOut(id=e.id, channel=e.channel, status=e.status, source=e.source, proof=e.proof,
                           captured_at=e.captured_at, ip=e.ip, user_agent=e.user_agent, evidence=e.evidence, created_at=e.created_at)


def render_suppression(s: Suppression) -> SuppressionOut:
    return SuppressionOut(id=s.id, contact_id=s.contact_id, channel=s.channel, reason=s.reason, source=s.source,
                          evidence=s.evidence, created_at=s.created_at)


async def _state(db_session: DbSession, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> ConsentStateOut:
    history = await ConsentRepository(db_session, tenant_id).history(contact_id)
    state: dict[str, str | None] = {"whatsapp": None, "email": None}
    for entry in reversed(history):  # oldest first, so the latest wins
        state[entry.channel] = entry.status
    return ConsentStateOut(contact_id=contact_id, state=state, history=[render_consent(e) for e in history])


class ConsentsController(Controller):
    path = "/v1/consents"
    tags = ["consent"]
    security = [{"ApiKey": []}]
    dependencies = {"principal": require_scope("admin")}

    @post("/", summary="Append to the consent ledger")
    async def record(self, data: ConsentIn, principal: Caller, db_session: DbSession) -> ConsentStateOut:
        policy = await get_policy(db_session, principal.tenant)
        idents = from_fields(phone=data.phone, whatsapp_user_id=data.whatsapp_user_id, email=data.email,
                             default_region=policy.default_country)
        contact = await service.resolve(db_session, principal.tenant, idents)
        await service.record_consent(db_session, principal.tenant, contact, channel=data.channel, status=data.status,
                                     source=data.source, proof=data.proof, captured_at=data.captured_at, ip=data.ip,
                                     user_agent=data.user_agent, actor=principal)
        return await _state(db_session, principal.tenant, contact.id)

    @get("/", summary="Current consent state and its history, for one person")
    async def read(self, principal: Caller, db_session: DbSession, phone: str | None = None,
                   whatsapp_user_id: str | None = None, email: str | None = None) -> ConsentStateOut:
        policy = await get_policy(db_session, principal.tenant)
        (ident,) = from_fields(phone=phone, whatsapp_user_id=whatsapp_user_id, email=email,
                               default_region=policy.default_country, exactly_one=True)
        contact = await service.find(db_session, principal.tenant, ident)
        if contact is None:
            raise NotFound("no consent recorded for this person")
        return await _state(db_session, principal.tenant, contact.id)


class SuppressionsController(Controller):
    path = "/v1/suppressions"
    tags = ["suppressions"]
    security = [{"ApiKey": []}]
    dependencies = {"principal": require_scope("admin")}

    @get("/", summary="List suppressions")
    async def list(self, principal: Caller, db_session: DbSession, channel: str | None = None,
                   phone: str | None = None, whatsapp_user_id: str | None = None, email: str | None = None,
                   cursor: str | None = None, limit: Annotated[int, Parameter(ge=1, le=200)] = 50) -> SuppressionPage:
        repo = SuppressionRepository(db_session, principal.tenant)
        stmt = repo.statement()
        if channel:
            stmt = stmt.where(Suppression.channel == channel)
        if phone or whatsapp_user_id or email:
            policy = await get_policy(db_session, principal.tenant)
            (ident,) = from_fields(phone=phone, whatsapp_user_id=whatsapp_user_id, email=email,
                                   default_region=policy.default_country, exactly_one=True)
            contact = await service.find(db_session, principal.tenant, ident)
            stmt = stmt.where(Suppression.contact_id == (contact.id if contact else None))
        rows = await repo.all(paginate(stmt, Suppression, cursor, limit))
        return SuppressionPage(**page_of(rows, limit, render_suppression))

    @post("/", summary="Suppress a person on a channel (idempotent)")
    async def add(self, data: SuppressionIn, principal: Caller, db_session: DbSession) -> SuppressionOut:
        policy = await get_policy(db_session, principal.tenant)
        idents = from_fields(phone=data.phone, whatsapp_user_id=data.whatsapp_user_id, email=data.email,
                             default_region=policy.default_country, exactly_one=True)
        contact = await service.resolve(db_session, principal.tenant, idents)
        row, _ = await service.suppress(db_session, principal.tenant, contact, channel=data.channel, reason=data.reason,
                                        source=data.source, actor=principal)
        return render_suppression(row)

    @get("/{suppression_id:uuid}", summary="Read one suppression")
    async def read(self, suppression_id: uuid.UUID, principal: Caller, db_session: DbSession) -> SuppressionOut:
        return render_suppression(await SuppressionRepository(db_session, principal.tenant).get(suppression_id, what="suppression"))

    @delete("/{suppression_id:uuid}", summary="Lift a suppression")
    async def remove(self, suppression_id: uuid.UUID, principal: Caller, db_session: DbSession) -> None:
        row = await SuppressionRepository(db_session, principal.tenant).get(suppression_id, what="suppression")
        await service.lift(db_session, principal.tenant, row, actor=principal)


ROUTES = [ConsentsController, SuppressionsController]
