"""Consent ledger and suppression list (scope admin; every change audited)."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, delete, get, post
from litestar.params import Parameter

from app.core.db import utcnow
from app.core.deps import DbSession
from app.core.errors import NotFound, ValidationFailed
from app.core.pagination import page_of, paginate
from tenants.auth import Caller, require_scope
from tenants.contacts import service
from tenants.contacts.identifiers import Identifier
from tenants.contacts.lookup import from_fields
from tenants.contacts.models import ConsentEntry, Contact, Suppression
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

# Consent evidence must be plausible: a moment that has happened (up to a little clock skew), after a
# sane floor, from an address that is one, on an address of the channel consented to.
CLOCK_SKEW = timedelta(minutes=5)
CAPTURED_FLOOR = datetime(2000, 1, 1, tzinfo=UTC)


def check_consent(data: ConsentIn) -> None:
    """422 with a pointer for implausible evidence."""
    if data.channel == "whatsapp" and data.phone is None and data.whatsapp_user_id is None:
        raise ValidationFailed(
            "a WhatsApp consent names the person's WhatsApp address: give phone or whatsapp_user_id", pointer="/phone"
        )
    if data.channel == "email" and data.email is None:
        raise ValidationFailed("an email consent names the person's email address", pointer="/email")
    if data.captured_at is not None:
        if data.captured_at.tzinfo is None:
            raise ValidationFailed(
                "captured_at needs a UTC offset (RFC 3339), e.g. 2026-11-01T10:00:00Z", pointer="/captured_at"
            )
        if data.captured_at > utcnow() + CLOCK_SKEW:
            raise ValidationFailed("captured_at is in the future", pointer="/captured_at")
        if data.captured_at < CAPTURED_FLOOR:
            raise ValidationFailed(f"captured_at is before {CAPTURED_FLOOR:%Y-%m-%d}", pointer="/captured_at")
    if data.ip is None:
        return
    try:
        ipaddress.ip_address(data.ip)
    except ValueError:
        raise ValidationFailed("ip must be an IPv4 or IPv6 address", pointer="/ip") from None


def render_consent(e: ConsentEntry) -> ConsentEntryOut:
    return ConsentEntryOut(
        id=e.id,
        channel=e.channel,
        status=e.status,
        source=e.source,
        proof=e.proof,
        captured_at=e.captured_at,
        ip=e.ip,
        user_agent=e.user_agent,
        evidence=e.evidence,
        created_at=e.created_at,
    )


def render_suppression(s: Suppression) -> SuppressionOut:
    return SuppressionOut(
        id=s.id,
        contact_id=s.contact_id,
        channel=s.channel,
        reason=s.reason,
        source=s.source,
        evidence=s.evidence,
        created_at=s.created_at,
    )


async def _state(db_session: DbSession, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> ConsentStateOut:
    history = await ConsentRepository(db_session, tenant_id).history(contact_id)
    state: dict[str, str | None] = {"whatsapp": None, "email": None}
    for entry in reversed(history):  # oldest first, so the latest wins
        state[entry.channel] = entry.status
    return ConsentStateOut(contact_id=contact_id, state=state, history=[render_consent(e) for e in history])


async def _identifiers(
    db_session: DbSession,
    tenant_id: uuid.UUID,
    *,
    phone: str | None,
    whatsapp_user_id: str | None,
    email: str | None,
    exactly_one: bool = False,
) -> list[Identifier]:
    """The request's addresses as identifiers, phone numbers read in the tenant's default country."""
    policy = await get_policy(db_session, tenant_id)
    return from_fields(
        phone=phone,
        whatsapp_user_id=whatsapp_user_id,
        email=email,
        default_region=policy.default_country,
        exactly_one=exactly_one,
    )


async def record_consent(db_session: DbSession, tenant_id: uuid.UUID, data: ConsentIn, *, actor: Any) -> Contact:
    """POST /v1/consents (and the console's form): check the evidence, find or make the person, append."""
    check_consent(data)
    idents = await _identifiers(
        db_session, tenant_id, phone=data.phone, whatsapp_user_id=data.whatsapp_user_id, email=data.email
    )
    contact = await service.resolve(db_session, tenant_id, idents, within_quota=True)
    await service.record_consent(
        db_session,
        tenant_id,
        contact,
        channel=data.channel,
        status=data.status,
        source=data.source,
        proof=data.proof,
        captured_at=data.captured_at,
        ip=data.ip,
        user_agent=data.user_agent,
        actor=actor,
    )
    return contact


async def add_suppression(
    db_session: DbSession, tenant_id: uuid.UUID, data: SuppressionIn, *, actor: Any
) -> Suppression:
    """POST /v1/suppressions (and the console's form): find or make the person, suppress (idempotent)."""
    idents = await _identifiers(
        db_session,
        tenant_id,
        phone=data.phone,
        whatsapp_user_id=data.whatsapp_user_id,
        email=data.email,
        exactly_one=True,
    )
    contact = await service.resolve(db_session, tenant_id, idents)
    row, _ = await service.suppress(
        db_session, tenant_id, contact, channel=data.channel, reason=data.reason, source=data.source, actor=actor
    )
    return row


class ConsentsController(Controller):
    path = "/v1/consents"
    tags = ["consent"]
    security = [{"ApiKey": []}]
    dependencies = {"principal": require_scope("admin")}

    @post("/", summary="Append to the consent ledger")
    async def record(self, data: ConsentIn, principal: Caller, db_session: DbSession) -> ConsentStateOut:
        contact = await record_consent(db_session, principal.tenant, data, actor=principal)
        return await _state(db_session, principal.tenant, contact.id)

    @get("/", summary="Current consent state and its history, for one person")
    async def read(
        self,
        principal: Caller,
        db_session: DbSession,
        phone: str | None = None,
        whatsapp_user_id: str | None = None,
        email: str | None = None,
    ) -> ConsentStateOut:
        (ident,) = await _identifiers(
            db_session, principal.tenant, phone=phone, whatsapp_user_id=whatsapp_user_id, email=email, exactly_one=True
        )
        contact = await service.find(db_session, principal.tenant, ident)
        if contact is None:
            raise NotFound("no consent recorded for this person")
        return await _state(db_session, principal.tenant, contact.id)


async def list_suppressions(
    db_session: DbSession,
    tenant_id: uuid.UUID,
    *,
    channel: str | None,
    phone: str | None,
    whatsapp_user_id: str | None,
    email: str | None,
    cursor: str | None,
    limit: int,
) -> list[Suppression]:
    """GET /v1/suppressions (and the console's list): the tenant's suppressions, newest first, filtered by
    channel and by one person (exactly one of phone, whatsapp_user_id, email; 422 otherwise), a page of
    `limit` and one more (page_of tells whether there is a next page)."""
    repo = SuppressionRepository(db_session, tenant_id)
    stmt = repo.statement()
    if channel:
        stmt = stmt.where(Suppression.channel == channel)
    if phone or whatsapp_user_id or email:
        (ident,) = await _identifiers(
            db_session, tenant_id, phone=phone, whatsapp_user_id=whatsapp_user_id, email=email, exactly_one=True
        )
        contact = await service.find(db_session, tenant_id, ident)
        stmt = stmt.where(Suppression.contact_id == (contact.id if contact else None))
    return list(await repo.all(paginate(stmt, Suppression, cursor, limit)))


class SuppressionsController(Controller):
    path = "/v1/suppressions"
    tags = ["suppressions"]
    security = [{"ApiKey": []}]
    dependencies = {"principal": require_scope("admin")}

    @get("/", summary="List suppressions")
    async def list(
        self,
        principal: Caller,
        db_session: DbSession,
        channel: str | None = None,
        phone: str | None = None,
        whatsapp_user_id: str | None = None,
        email: str | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    ) -> SuppressionPage:
        rows = await list_suppressions(
            db_session,
            principal.tenant,
            channel=channel,
            phone=phone,
            whatsapp_user_id=whatsapp_user_id,
            email=email,
            cursor=cursor,
            limit=limit,
        )
        return SuppressionPage(**page_of(rows, limit, render_suppression))

    @post("/", summary="Suppress a person on a channel (idempotent)")
    async def add(self, data: SuppressionIn, principal: Caller, db_session: DbSession) -> SuppressionOut:
        return render_suppression(await add_suppression(db_session, principal.tenant, data, actor=principal))

    @get("/{suppression_id:uuid}", summary="Read one suppression")
    async def read(self, suppression_id: uuid.UUID, principal: Caller, db_session: DbSession) -> SuppressionOut:
        return render_suppression(
            await SuppressionRepository(db_session, principal.tenant).get(suppression_id, what="suppression")
        )

    @delete("/{suppression_id:uuid}", summary="Lift a suppression")
    async def remove(self, suppression_id: uuid.UUID, principal: Caller, db_session: DbSession) -> None:
        row = await SuppressionRepository(db_session, principal.tenant).get(suppression_id, what="suppression")
        await service.lift(db_session, principal.tenant, row, actor=principal)


ROUTES = [ConsentsController, SuppressionsController]
