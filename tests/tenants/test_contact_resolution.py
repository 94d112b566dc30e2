"""Resolving a notification's recipient to a contact, when several requests name a new person at once."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select

from app.core.db import session_factory
from tenants.contacts import identifiers
from tenants.contacts import service as contacts
from tenants.contacts.models import Contact, ContactIdentifier
from tests.factories import make_tenant

PHONE, EMAIL = "+14155550123", "ava@example.com"


async def _resolve_and_commit(tenant_id: uuid.UUID, *idents: identifiers.Identifier) -> uuid.UUID:
    async with session_factory()() as s:
        contact_id = await contacts.resolve_id(s, tenant_id, idents)
        await s.commit()
        return contact_id


async def _count(model, tenant_id: uuid.UUID) -> int:
    async with session_factory()() as s:
        return (
            await s.execute(select(func.count()).select_from(model).where(model.tenant_id == tenant_id))
        ).scalar_one()


async def test_concurrent_first_requests_for_one_new_person_agree_on_one_contact(client):
    tenant_id = uuid.UUID((await make_tenant(client))["id"])
    phone, email = identifiers.phone(PHONE), identifiers.email(EMAIL)
    ids = await asyncio.gather(*(_resolve_and_commit(tenant_id, phone, email) for _ in range(12)))
    assert len(set(ids)) == 1
    assert await _count(Contact, tenant_id) == 1, "the losers' contacts are not left behind"
    assert await _count(ContactIdentifier, tenant_id) == 2


async def test_a_known_identifier_wins_and_new_ones_join_it(client):
    tenant_id = uuid.UUID((await make_tenant(client))["id"])
    by_phone = await _resolve_and_commit(tenant_id, identifiers.phone(PHONE))
    by_email = await _resolve_and_commit(tenant_id, identifiers.email("bo@example.com"))
    # Both known, naming different people: the phone (stronger) wins and nothing is merged.
    assert (
        await _resolve_and_commit(tenant_id, identifiers.email("bo@example.com"), identifiers.phone(PHONE)) == by_phone
    )
    assert await _resolve_and_commit(tenant_id, identifiers.email("bo@example.com")) == by_email
    # A new email given with a known phone joins the phone's contact.
    assert await _resolve_and_commit(tenant_id, identifiers.phone(PHONE), identifiers.email(EMAIL)) == by_phone
    assert await _resolve_and_commit(tenant_id, identifiers.email(EMAIL)) == by_phone
