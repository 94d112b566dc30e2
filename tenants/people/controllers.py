"""Contacts: list, read (scope admin or notifications:read) and erase on request (scope admin)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, delete, get
from litestar.params import Parameter

from app.core.db import utcnow
from app.core.deps import DbSession
from app.core.pagination import page_of
from tenants.auth import Caller, require_any_scope, require_scope
from tenants.contacts import service as contacts
from tenants.contacts.lookup import from_fields
from tenants.contacts.models import ConsentEntry, Contact, ContactIdentifier, Suppression
from tenants.people import service
from tenants.people.schemas import (
    ConsentChannelOut,
    ConsentOut,
    ContactOut,
    ContactPage,
    ContactSummary,
    IdentifierKind,
    IdentifierOut,
    SuppressionChannelOut,
    SuppressionStateOut,
    WindowOut,
    WindowSenderOut,
)
from tenants.routing.service import get_policy

KIND_OUT: dict[str, IdentifierKind] = {"phone": "phone", "bsuid": "whatsapp_user_id", "email": "email"}
READERS = require_any_scope("admin", "notifications:read")


def render_identifier(row: ContactIdentifier) -> IdentifierOut:
    return IdentifierOut(
        kind=KIND_OUT[row.kind],
        value=row.value,
        current=row.is_current,
        erased=row.value is None,
        first_seen_at=row.created_at,
        last_seen_at=row.last_seen_at,
    )


def _consent(entry: ConsentEntry | None) -> ConsentChannelOut:
    if entry is None:
        return ConsentChannelOut(status=None, source=None, captured_at=None)
    return ConsentChannelOut(status=entry.status, source=entry.source, captured_at=entry.captured_at)  # type: ignore[arg-type]


def _suppression(row: Suppression | None) -> SuppressionChannelOut:
    if row is None:
        return SuppressionChannelOut(suppressed=False, suppression_id=None, reason=None, source=None, since=None)
    return SuppressionChannelOut(
        suppressed=True, suppression_id=row.id, reason=row.reason, source=row.source, since=row.created_at
    )


def render_summary(
    c: Contact, idents: list[ContactIdentifier], sups: list[Suppression], *, window_open: bool
) -> ContactSummary:
    return ContactSummary(
        id=c.id,
        phone=contacts.current(idents, "phone"),
        whatsapp_user_id=contacts.current(idents, "bsuid"),
        email=contacts.current(idents, "email"),
        profile_name=c.profile_name,
        whatsapp_username=c.whatsapp_username,
        suppressed=[s.channel for s in sups],
        window_open=window_open,
        erased_at=c.erased_at,
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


def render_contact(v: service.ContactView) -> ContactOut:
    now = utcnow()
    senders = [
        WindowSenderOut(
            sender=w.sender,
            last_inbound_at=w.last_inbound_at,
            expires_at=service.window_expires(w.last_inbound_at),
            open=now < service.window_expires(w.last_inbound_at),
        )
        for w in v.windows
    ]
    latest = senders[0] if senders else None  # windows come newest first
    c = v.contact
    return ContactOut(
        id=c.id,
        profile_name=c.profile_name,
        whatsapp_username=c.whatsapp_username,
        erased_at=c.erased_at,
        created_at=c.created_at,
        updated_at=c.updated_at,
        identifiers=[render_identifier(i) for i in v.identifiers],
        consent=ConsentOut(whatsapp=_consent(v.consent["whatsapp"]), email=_consent(v.consent["email"])),
        suppression=SuppressionStateOut(
            whatsapp=_suppression(v.suppressions["whatsapp"]), email=_suppression(v.suppressions["email"])
        ),
        window=WindowOut(
            open=any(s.open for s in senders),
            last_inbound_at=latest.last_inbound_at if latest else None,
            expires_at=latest.expires_at if latest else None,
            senders=senders,
        ),
    )


class ContactsController(Controller):
    path = "/v1/contacts"
    tags = ["contacts"]
    security = [{"ApiKey": []}]

    @get(
        "/",
        dependencies={"principal": READERS},
        summary="List contacts, newest first",
        description="Filter by `phone`, `whatsapp_user_id` (a BSUID, current or history) or `email`; given together, "
        "they must all name the same contact. A malformed filter is 422.",
    )
    async def list(
        self,
        principal: Caller,
        db_session: DbSession,
        phone: str | None = None,
        whatsapp_user_id: str | None = None,
        email: str | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    ) -> ContactPage:
        filtered = phone is not None or whatsapp_user_id is not None or email is not None
        only = None
        if filtered:
            policy = await get_policy(db_session, principal.tenant)
            idents = from_fields(
                phone=phone, whatsapp_user_id=whatsapp_user_id, email=email, default_region=policy.default_country
            )
            only = await service.matching_contact(db_session, principal.tenant, idents)
        view = await service.page(
            db_session, principal.tenant, only=only, filtered=filtered, cursor=cursor, limit=limit
        )
        return ContactPage(
            **page_of(
                view.rows,
                limit,
                lambda c: render_summary(
                    c, view.identifiers[c.id], view.suppressions[c.id], window_open=c.id in view.window_open
                ),
            )
        )

    @get(
        "/{contact_id:uuid}",
        dependencies={"principal": READERS},
        summary="A contact: identifiers (current and history), consent, suppression and 24h window per sender",
    )
    async def read(self, contact_id: uuid.UUID, principal: Caller, db_session: DbSession) -> ContactOut:
        return render_contact(await service.view(db_session, principal.tenant, contact_id))

    @delete(
        "/{contact_id:uuid}",
        dependencies={"principal": require_scope("admin")},
        summary="Erase a contact's personal data (GDPR); suppressions are kept",
        description="Redacts identifier values, profile name and username, the bodies, media and profile names of "
        "their inbound messages, their notifications' recipient, variables, text, media and metadata, and "
        "the stored provider callbacks and queued webhook events about them; consent proof, IP and user agent; and "
        "their identifiers wherever they were written into free text (consent source, suppression "
        "reason, audit entries, stored idempotent responses). Keyed hashes of the identifiers stay, so a later "
        "request naming the same phone or email finds the contact and is still suppressed where it "
        "was. Notifications not yet handed to a provider are canceled. Repeating it is harmless.",
    )
    async def erase(self, contact_id: uuid.UUID, principal: Caller, db_session: DbSession, erase_contact: Any) -> None:
        # Erasure reaches the notify and webhook tables, which tenants/ does not import: the app
        # composes it (app/erasure) and provides it here (app/asgi.py, `erase_contact`).
        await erase_contact(db_session, principal.tenant, contact_id, actor=principal)


ROUTES = [ContactsController]
