"""WhatsApp username users (BSUIDs) end to end: the emulator writes in with every shape Twilio sends,
the gateway's worker links contacts, honours STOP, routes notifications, and erasure keeps suppression.
"""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from app.core.db import session_factory
from app.notify import pipeline
from app.webhooks.models import InboundMessage, RawEvent
from channels.signatures import compute_twilio_signature
from tests.conftest import GATEWAY_URL
from tests.support.gateway import WiredTenant, notify, read, settle, wired_tenant

pytestmark = pytest.mark.usefixtures("worker")

PHONE = "+14155550123"
BSUID = "US.13491208655302741918"
BSUID_NEW = "US.55512345678901234567"
EMAIL = "ava@example.com"


def steps(n: dict[str, Any]) -> dict[str, str]:
    return {d["step"]: d["result"] for d in n["decisions"]}


def decision(n: dict[str, Any], step: str) -> dict[str, Any]:
    (found,) = [d for d in n["decisions"] if d["step"] == step]
    return found


async def contacts(client: Any, t: WiredTenant, **params: str) -> list[dict[str, Any]]:
    r = await client.get("/v1/contacts", params=params, headers=t.admin)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def contact(client: Any, t: WiredTenant, contact_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/contacts/{contact_id}", headers=t.admin)
    assert r.status_code == 200, r.text
    return r.json()


def whatsapp_messages(emulator: Any, t: WiredTenant, to: str | None = None) -> list[dict[str, Any]]:
    """What the gateway sent (the emulator also records the users' inbound messages)."""
    return [
        m for m in emulator.messages(account_sid=t.account["account_sid"], to=to) if m["direction"] == "outbound-api"
    ]


async def post_inbound(client: Any, t: WiredTenant, form: list[tuple[str, str]]) -> Any:
    """A signed inbound webhook built by hand, for shapes the emulator refuses to make."""
    url = GATEWAY_URL + "/webhooks/twilio/inbound"
    signature = compute_twilio_signature(t.account["auth_token"], url, form)
    return await client.post(
        "/webhooks/twilio/inbound",
        content=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )


def base_form(t: WiredTenant, **fields: str) -> list[tuple[str, str]]:
    sid = "SM" + secrets.token_hex(16)
    return [
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("SmsMessageSid", sid),
        ("AccountSid", t.account["account_sid"]),
        ("To", t.account["whatsapp_from"]),
        ("Body", "hello"),
        ("NumMedia", "0"),
        ("SmsStatus", "received"),
        ("ApiVersion", "2010-04-01"),
        *fields.items(),
    ]


async def test_username_only_user_writes_in_sends_stop_and_is_suppressed(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    sent = emulator.inbound(
        t.account["account_sid"], from_=None, body="Hi there", bsuid=BSUID, hide_phone=True, profile_name="Ava"
    )
    form = dict(sent["webhook"]["params"])
    assert form["From"] == f"whatsapp:{BSUID}" and "WaId" not in form and sent["webhook"]["response_status"] == 200
    await settle(emulator)

    (c,) = await contacts(client, t)
    assert (c["phone"], c["whatsapp_user_id"], c["profile_name"], c["suppressed"]) == (None, BSUID, "Ava", [])
    window = (await contact(client, t, c["id"]))["window"]
    assert window["open"] and window["senders"][0]["sender"] == t.account["whatsapp_from"]

    emulator.inbound(t.account["account_sid"], from_=None, body="STOP", bsuid=BSUID, hide_phone=True)
    await settle(emulator)
    (c,) = await contacts(client, t, whatsapp_user_id=BSUID)
    assert c["suppressed"] == ["whatsapp"]
    detail = await contact(client, t, c["id"])
    assert detail["suppression"]["whatsapp"]["source"] == "inbound_keyword"
    assert detail["consent"]["whatsapp"]["status"] == "withdrawn"
    # Twilio takes no BSUID as To (docs/contacts.md), so not even the opt-out confirmation can go.
    assert whatsapp_messages(emulator, t) == []

    n = await read(client, t, await notify(client, t, to={"whatsapp_user_id": BSUID, "email": EMAIL}))
    await settle(emulator)
    n = await read(client, t, n["id"])
    assert steps(n)["suppression"] == "suppressed" and n["channel"] == "email" and n["contact_id"] == c["id"], n
    assert whatsapp_messages(emulator, t) == [], "nothing went to WhatsApp"
    assert len(emulator.sendgrid_messages(api_key=t.sendgrid["api_key"], to=EMAIL)) == 1


async def test_a_bsuid_only_contact_gets_no_whatsapp_and_falls_back_to_email(client, emulator, gateway):
    assert pipeline.TWILIO_ACCEPTS_BSUID_TO is False, "see docs/contacts.md: update this test if Twilio documents it"
    t = await wired_tenant(client, emulator, gateway)
    emulator.inbound(t.account["account_sid"], from_=None, body="hello", bsuid=BSUID, hide_phone=True)
    await settle(emulator)
    # The window is open and the emulator would accept To=whatsapp:<BSUID>; the gateway still doesn't use it.
    n = await read(
        client, t, await notify(client, t, text="Your table is ready", to={"whatsapp_user_id": BSUID, "email": EMAIL})
    )
    await settle(emulator)
    n = await read(client, t, n["id"])
    assert steps(n)["suppression"] == "clear" and decision(n, "address")["result"] == "none"
    assert "BSUID" in decision(n, "address")["detail"]
    assert decision(n, "fallback")["result"] == "email" and decision(n, "fallback")["detail"] == "no_whatsapp_address"
    assert n["channel"] == "email" and n["status"] == "delivered", n
    assert whatsapp_messages(emulator, t) == []


async def test_a_user_seen_by_phone_then_with_a_bsuid_is_one_contact(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    emulator.inbound(t.account["account_sid"], from_=PHONE, body="hi")
    await settle(emulator)
    (first,) = await contacts(client, t)
    assert (first["phone"], first["whatsapp_user_id"]) == (PHONE, None)

    emulator.inbound(t.account["account_sid"], from_=PHONE, body="again", bsuid=BSUID)
    await settle(emulator)
    (c,) = await contacts(client, t)
    assert c["id"] == first["id"] and (c["phone"], c["whatsapp_user_id"]) == (PHONE, BSUID)
    assert [x["id"] for x in await contacts(client, t, whatsapp_user_id=BSUID)] == [c["id"]]
    async with session_factory()() as s:
        assert {m.contact_id for m in (await s.execute(select(InboundMessage))).scalars()} == {uuid.UUID(c["id"])}


async def test_a_phone_contact_and_a_bsuid_contact_merge_when_an_inbound_carries_both(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    nid = await notify(client, t, to={"phone": PHONE, "email": EMAIL})  # the client names the phone: contact 1
    emulator.inbound(
        t.account["account_sid"], from_=None, body="who is this?", bsuid=BSUID, hide_phone=True
    )  # contact 2
    await settle(emulator)
    two = await contacts(client, t)
    assert len(two) == 2
    by_phone = (await contacts(client, t, phone=PHONE))[0]["id"]
    by_bsuid = (await contacts(client, t, whatsapp_user_id=BSUID))[0]["id"]
    assert by_phone != by_bsuid

    emulator.inbound(t.account["account_sid"], from_=PHONE, body="it's me", bsuid=BSUID)  # proof they are one
    await settle(emulator)
    (merged,) = await contacts(client, t)
    assert merged["id"] == by_phone and (merged["phone"], merged["whatsapp_user_id"], merged["email"]) == (
        PHONE,
        BSUID,
        EMAIL,
    )
    assert (await client.get(f"/v1/contacts/{by_bsuid}", headers=t.admin)).status_code == 404
    assert (await read(client, t, nid))["contact_id"] == merged["id"]
    detail = await contact(client, t, merged["id"])
    assert detail["window"]["open"] and len(detail["window"]["senders"]) == 1
    async with session_factory()() as s:
        owners = {str(m.contact_id) for m in (await s.execute(select(InboundMessage))).scalars()}
    assert owners == {merged["id"]}, "the username user's earlier message moved with them"


async def test_a_new_bsuid_for_the_same_phone_is_kept_as_history(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    emulator.inbound(t.account["account_sid"], from_=PHONE, body="hi", bsuid=BSUID)
    await settle(emulator)
    emulator.inbound(t.account["account_sid"], from_=PHONE, body="new phone, same number", bsuid=BSUID_NEW)
    await settle(emulator)
    (c,) = await contacts(client, t)
    assert c["whatsapp_user_id"] == BSUID_NEW
    bsuids = {
        i["value"]: i["current"]
        for i in (await contact(client, t, c["id"]))["identifiers"]
        if i["kind"] == "whatsapp_user_id"
    }
    assert bsuids == {BSUID: False, BSUID_NEW: True}
    assert [x["id"] for x in await contacts(client, t, whatsapp_user_id=BSUID)] == [c["id"]], "history still finds them"


async def test_prefixless_from_is_read_as_a_phone(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    sent = emulator.inbound(t.account["account_sid"], from_=PHONE, body="hi", prefixless=True)
    assert dict(sent["webhook"]["params"])["From"] == PHONE
    # The same shape without WaId, so the phone can only come from the prefixless From.
    r = await post_inbound(client, t, base_form(t, From="+14155550144"))
    assert r.status_code == 200, r.text
    # A username user's prefixless From is their BSUID.
    emulator.inbound(t.account["account_sid"], from_=None, body="hi", bsuid=BSUID, hide_phone=True, prefixless=True)
    await settle(emulator)
    found = {(c["phone"], c["whatsapp_user_id"]) for c in await contacts(client, t)}
    assert found == {(PHONE, None), ("+14155550144", None), (None, BSUID)}
    for c in await contacts(client, t):
        assert (await contact(client, t, c["id"]))["window"]["open"]


async def test_an_inbound_naming_no_one_is_acknowledged_and_stored(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    shapes = [
        base_form(t),
        base_form(t, From="whatsapp:"),
        base_form(t, From="whatsapp:not-a-person", WaId="abc"),
        base_form(t, From="", ExternalUserId="whatsapp:xx.bad"),
    ]
    for form in shapes:
        r = await post_inbound(client, t, form)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml"), r.text
        assert "<Response" in r.text
    await settle(emulator)
    async with session_factory()() as s:
        stored = (await s.execute(select(InboundMessage))).scalars().all()
        assert sorted(m.message_sid for m in stored) == sorted(dict(f)["MessageSid"] for f in shapes)
        assert all(m.contact_id is None and m.body == "hello" for m in stored)
        events = (await s.execute(select(RawEvent).where(RawEvent.kind == "inbound"))).scalars().all()
        assert len(events) == len(shapes) and all(e.processed_at is not None for e in events)
    assert await contacts(client, t) == []


async def test_stop_from_a_username_user_suppresses_their_phone_once_linked(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    emulator.inbound(t.account["account_sid"], from_=None, body="STOP", bsuid=BSUID, hide_phone=True)
    await settle(emulator)
    emulator.inbound(t.account["account_sid"], from_=PHONE, body="thanks", bsuid=BSUID)  # the phone shows up later
    await settle(emulator)
    (c,) = await contacts(client, t, phone=PHONE)
    assert c["whatsapp_user_id"] == BSUID and c["suppressed"] == ["whatsapp"]

    n = await read(client, t, await notify(client, t, to={"phone": PHONE, "email": EMAIL}))
    await settle(emulator)
    n = await read(client, t, n["id"])
    assert steps(n)["suppression"] == "suppressed" and n["channel"] == "email" and n["contact_id"] == c["id"], n
    assert whatsapp_messages(emulator, t, to=f"whatsapp:{PHONE}") == []


async def test_erasure_keeps_the_suppression(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    emulator.inbound(t.account["account_sid"], from_=PHONE, body="STOP", bsuid=BSUID, profile_name="Ava Lovelace")
    await settle(emulator)
    assert len(whatsapp_messages(emulator, t, to=f"whatsapp:{PHONE}")) == 1  # the opt-out confirmation
    (c,) = await contacts(client, t, phone=PHONE)
    assert c["suppressed"] == ["whatsapp"]

    r = await client.delete(f"/v1/contacts/{c['id']}", headers=t.admin)
    assert r.status_code == 204, r.text
    erased = await contact(client, t, c["id"])
    assert erased["erased_at"] and erased["profile_name"] is None
    assert all(i["value"] is None for i in erased["identifiers"]) and len(erased["identifiers"]) == 2
    assert erased["suppression"]["whatsapp"]["suppressed"] is True
    async with session_factory()() as s:
        (msg,) = (await s.execute(select(InboundMessage))).scalars().all()
        assert msg.body is None and msg.from_address is None and msg.profile_name is None and msg.keyword == "stop"
        stored = json.dumps([e.payload for e in (await s.execute(select(RawEvent))).scalars()])
    for personal in (PHONE, PHONE[1:], BSUID, "Ava Lovelace", "STOP"):
        assert personal not in stored, f"{personal} survived in a stored callback"

    n = await read(client, t, await notify(client, t, to={"phone": PHONE, "email": EMAIL}))
    await settle(emulator)
    n = await read(client, t, n["id"])
    assert n["contact_id"] == c["id"], "the erased phone's hash still names the contact"
    assert steps(n)["suppression"] == "suppressed" and n["channel"] == "email", n
    assert len(whatsapp_messages(emulator, t, to=f"whatsapp:{PHONE}")) == 1, "nothing new went to WhatsApp"


async def test_a_replayed_old_bsuid_does_not_become_current_again(client, database):
    """Meta issues a new BSUID when a user changes number; a late message from the old one is history."""
    from datetime import timedelta

    from app.core.db import session_factory, utcnow
    from app.people import service as people
    from tenants.contacts import identifiers
    from tenants.contacts import service as contacts
    from tests.factories import make_tenant

    tenant_id = __import__("uuid").UUID((await make_tenant(client))["id"])
    phone = identifiers.phone("+14155550177")
    old, new = identifiers.bsuid("US.1111111111"), identifiers.bsuid("US.2222222222")
    t0 = utcnow()
    async with session_factory()() as s:
        await people.link_inbound(s, tenant_id, phone=phone, bsuid=old, at=t0)
        contact = await people.link_inbound(s, tenant_id, phone=phone, bsuid=new, at=t0 + timedelta(minutes=5))
        await people.link_inbound(s, tenant_id, phone=None, bsuid=old, at=t0 + timedelta(minutes=1))  # late delivery
        rows = await contacts.identifiers(s, tenant_id, contact.id)
        assert contacts.current(rows, "bsuid") == new.value
        assert sorted((r.value, r.is_current) for r in rows if r.kind == "bsuid") == [
            (old.value, False),
            (new.value, True),
        ]
        await s.commit()
