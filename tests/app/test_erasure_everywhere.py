"""Erasure reaches every row that holds the person (issue 11, section 11).

One person, through every path that stores something about them: consent with proof, IP and user
agent; notifications (with an Idempotency-Key) with their name in the variables, text and metadata,
sent on WhatsApp and by email through the emulator (attempts, provider events, stored callbacks,
SendGrid events); an inbound message with a profile name; a STOP; a webhook endpoint receiving every
event about them. After DELETE /v1/contacts/{id}, every text and JSON column of every table is
searched for each of their strings: none may remain.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy import text

from app import models  # noqa: F401  (every table)
from app.core.db import Base, session_factory
from app.endpoints import urls
from tests.app.endpoints.factories import create_endpoint
from tests.support.gateway import TEMPLATE_KEY, settle, wired_tenant

PHONE = "+14155550142"
EMAIL = "ava.private@example.com"
NAME = "Avaprivatename"
BODY = "my very private reply"
PROFILE = "Ava Profilename"
PROOF = "signed form 4411 by Ava"
IP = "203.0.113.77"
AGENT = "PrivateAgent/9.1"
TEXT = "Hello Avaprivatetext, your parcel"
META = "crm-private-ref-99"
NEEDLES = [PHONE, PHONE.lstrip("+"), EMAIL, NAME, BODY, PROFILE, PROOF, IP, AGENT, TEXT, META]


async def leftovers(needles: list[str]) -> list[str]:
    """`table.column: needle` for every text or JSON column of every table that still holds a needle."""
    found = []
    async with session_factory()() as s:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if not isinstance(column.type, (sa.String, sa.Text, sa.JSON)) and "JSON" not in str(column.type):
                    continue
                for needle in needles:
                    hit = (
                        await s.execute(
                            text(f'SELECT count(*) FROM "{table.name}" WHERE CAST("{column.name}" AS text) LIKE :n'),
                            {"n": f"%{needle}%"},
                        )
                    ).scalar_one()
                    if hit:
                        found.append(f"{table.name}.{column.name}: {needle}")
    return found


async def test_after_erasure_no_row_anywhere_holds_the_person(
    client, emulator, gateway, worker, callback_sink, monkeypatch
):
    monkeypatch.setattr(urls, "EXTRA_TRUSTED_HOSTS", {callback_sink.base_url.removeprefix("http://")})
    t = await wired_tenant(client, emulator, gateway)
    await create_endpoint(client, t.admin, url=callback_sink.url("/erasure-hook"))
    sid = t.account["account_sid"]

    r = await client.post(
        "/v1/consents",
        headers=t.admin,
        json={
            "phone": PHONE,
            "email": EMAIL,
            "channel": "whatsapp",
            "status": "granted",
            "source": f"signup form of {EMAIL}",
            "proof": PROOF,
            "ip": IP,
            "user_agent": AGENT,
        },
    )
    assert r.status_code == 201, r.text
    contact_id = r.json()["contact_id"]
    emulator.inbound(sid, from_=PHONE, body=BODY, profile_name=PROFILE)  # opens the window
    await settle(emulator)
    r = await client.post(
        "/v1/notifications",
        headers={**t.admin, "Idempotency-Key": "erasure-1"},
        json={
            "to": {"phone": PHONE, "email": EMAIL},
            "template": TEMPLATE_KEY,
            "variables": {"name": NAME, "order": "18473"},
            "metadata": {"crm": META, "email": EMAIL},
        },
    )
    assert r.status_code == 202, r.text
    r = await client.post(
        "/v1/notifications",
        headers={**t.admin, "Idempotency-Key": "erasure-2"},
        json={"to": {"email": EMAIL}, "text": TEXT, "channels": ["email"], "metadata": {"crm": META}},
    )
    assert r.status_code == 202, r.text
    await settle(emulator)
    emulator.inbound(sid, from_=PHONE, body="STOP", profile_name=PROFILE)
    await settle(emulator)
    r = await client.post(
        "/v1/suppressions",
        headers=t.admin,
        json={  # written into the reason, and so the audit log
            "email": EMAIL,
            "channel": "email",
            "reason": f"call from {PHONE}",
        },
    )
    assert r.status_code == 201, r.text
    assert await leftovers([PHONE, EMAIL, BODY]), "the scenario stored nothing to erase: the test would prove nothing"

    r = await client.delete(f"/v1/contacts/{contact_id}", headers=t.admin)
    assert r.status_code == 204, r.text
    await settle(emulator)

    assert await leftovers(NEEDLES) == []
    # What opt-outs and audits need is kept: the suppression, and the erasure's own audit entry.
    sups = (await client.get("/v1/suppressions", params={"phone": PHONE}, headers=t.admin)).json()["items"]
    assert sorted((s["channel"], s["reason"]) for s in sups) == [
        ("email", "call from [erased]"),
        ("whatsapp", "opted_out"),
    ]
    audit = (await client.get("/v1/audit-log", params={"action": "contact.erased"}, headers=t.admin)).json()["items"]
    assert len(audit) == 1 and audit[0]["target_id"] == contact_id
    contact = (await client.get(f"/v1/contacts/{contact_id}", headers=t.admin)).json()
    assert contact["erased_at"] is not None and contact["id"] == str(uuid.UUID(contact_id))
