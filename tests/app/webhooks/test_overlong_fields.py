"""A validly signed callback whose fields are longer than our columns is kept and applied: free text
is cut with a marker, the raw payload stays whole, and its job completes (no endless retry).
An identifier too long to be real matches nothing: the event is an orphan."""

from __future__ import annotations

import json
import secrets
import time
import uuid

from sqlalchemy import select

from app.core.db import session_factory
from app.notify.models import Attempt, ProviderEvent
from app.outbox.models import OutboxItem
from app.webhooks.fields import MARK
from app.webhooks.ingest import PROCESS
from app.webhooks.models import InboundMessage, RawEvent
from channels.signatures import sign_sendgrid_event
from tests.app.webhooks.test_twilio_webhooks import post_signed, status_form
from tests.support.gateway import notify, read, settle, wired_tenant

LONG = "x" * 500


async def process_rows() -> list[OutboxItem]:
    async with session_factory()() as s:
        return list((await s.execute(select(OutboxItem).where(OutboxItem.kind == PROCESS))).scalars())


async def test_overlong_twilio_fields_are_cut_kept_raw_and_applied(client, emulator, gateway, worker):
    t = await wired_tenant(client, emulator, gateway)
    token, account = t.account["auth_token"], t.account["account_sid"]
    nid = await notify(client, t)
    await settle(emulator)
    attempt = (await read(client, t, nid))["attempts"][0]
    async with session_factory()() as s:  # as if Twilio's later callbacks were still to come
        row = await s.get(Attempt, uuid.UUID(attempt["id"]))
        row.status = "sent"
        await s.commit()
    code, message = "63016" + "9" * 500, "Outside the window " + LONG
    r = await post_signed(
        client,
        "/webhooks/twilio/status",
        status_form(account, attempt["provider_message_id"], "failed", ErrorCode=code, ErrorMessage=message),
        token,
        query=f"n={nid}&a={attempt['id']}",
    )
    assert r.status_code == 204
    long_sid = "SM" + "a" * 498
    r = await post_signed(
        client,
        "/webhooks/twilio/status",
        status_form(account, long_sid, "delivered" + LONG),
        token,
        query=f"n={nid}&a={attempt['id']}",
    )
    assert r.status_code == 204
    inbound = [
        ("AccountSid", account),
        ("MessageSid", long_sid),
        ("From", "whatsapp:+14155550123"),
        ("To", t.account["whatsapp_from"] + LONG),
        ("Body", "hello"),
        ("ProfileName", "Ava " + LONG),
        ("WaId", "1" * 500),
        ("NumMedia", "0"),
    ]
    r = await post_signed(client, "/webhooks/twilio/inbound", inbound, token)
    assert r.status_code == 200
    await settle(emulator)

    assert {row.state for row in await process_rows()} == {"done"}
    n = await read(client, t, nid)
    whatsapp = next(a for a in n["attempts"] if a["channel"] == "whatsapp")
    assert (
        whatsapp["status"] == "failed" and whatsapp["error_code"].endswith(MARK) and len(whatsapp["error_code"]) == 16
    )
    assert n["channel"] == "email"  # the failure was applied: the fallback followed
    async with session_factory()() as s:
        # The emulator's own callbacks are stored too: pick ours by what they carry.
        stored = [(r, dict(r.payload.get("form", []))) for r in (await s.execute(select(RawEvent))).scalars()]
        raws = {
            "status": next(r for r, f in stored if r.kind == "status" and f.get("ErrorCode") == code),
            "status:long": next(r for r, f in stored if r.kind == "status" and f.get("MessageSid") == long_sid),
            "inbound:long": next(r for r, _ in stored if r.kind == "inbound"),
        }  # kept as received
        assert raws["status:long"].orphan  # a SID too long to be Twilio's matches nothing
        orphan_event = (
            await s.execute(select(ProviderEvent).where(ProviderEvent.raw_event_id == raws["status:long"].id))
        ).scalar_one()
        assert orphan_event.attempt_id is None and not orphan_event.applied and orphan_event.status.endswith(MARK)
        row = (await s.execute(select(InboundMessage))).scalar_one()
        assert row.body == "hello" and row.profile_name.startswith("Ava x") and row.profile_name.endswith(MARK)
        assert len(row.profile_name) == 200 and row.to_address.endswith(MARK) and row.wa_id.endswith(MARK)
        assert len(row.message_sid) == 64 and row.message_sid != long_sid[:64]  # never a real SID's prefix
        assert dict(raws["inbound:long"].payload["form"])["ProfileName"] == "Ava " + LONG
        linked = (await s.execute(select(Attempt).where(Attempt.id == uuid.UUID(attempt["id"])))).scalar_one()
        assert linked.provider_message_id == attempt["provider_message_id"]  # the long SID was never linked
    # The same over-long inbound again is a duplicate, not a second message.
    await post_signed(
        client, "/webhooks/twilio/inbound", inbound, token, headers={"I-Twilio-Idempotency-Token": "again"}
    )
    await settle(emulator)
    async with session_factory()() as s:
        assert len((await s.execute(select(InboundMessage))).scalars().all()) == 1


async def test_overlong_sendgrid_fields_are_cut_kept_raw_and_applied(client, emulator, gateway, worker):
    t = await wired_tenant(client, emulator, gateway)
    nid = await notify(client, t, text="hi", channels=["email"], to={"email": "ava@example.com"})
    await settle(emulator)
    attempt = (await read(client, t, nid))["attempts"][0]
    now = int(time.time())
    events = [
        {
            "event": "bounce",
            "email": "ava@example.com",
            "status": "5.1.1" + "9" * 500,
            "reason": "No such user " + LONG,
            "sg_event_id": "e" * 500,
            "sg_message_id": attempt["provider_message_id"] + "." + LONG,
            "timestamp": now,
            "notifygw_attempt_id": attempt["id"],
        },
        {
            "event": "delivered" + LONG,
            "email": "bob@example.com",
            "sg_event_id": secrets.token_hex(8),
            "sg_message_id": "m" * 500,
            "timestamp": now,
        },
    ]
    body = json.dumps(events).encode()
    stamp = str(now)
    key = emulator.state.sendgrid_keys[t.sendgrid["api_key"]].private_key
    r = await client.post(
        f"/webhooks/sendgrid/{t.id}",
        content=body,
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": sign_sendgrid_event(key, body, stamp),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
            "Content-Type": "application/json",
        },
    )
    assert r.status_code == 204
    await settle(emulator)

    assert {row.state for row in await process_rows()} == {"done"}
    n = await read(client, t, nid)
    assert n["status"] == "failed" and n["attempts"][0]["error_class"] == "bounced"
    sup = (await client.get("/v1/suppressions", params={"email": "ava@example.com"}, headers=t.admin)).json()["items"]
    assert sup and sup[0]["evidence"].endswith(MARK)
    async with session_factory()() as s:
        stored = [r.payload["event"] for r in (await s.execute(select(RawEvent))).scalars()]
        assert {e["sg_event_id"] for e in events} <= {e["sg_event_id"] for e in stored}  # kept as received
        orphan = (await s.execute(select(RawEvent).where(RawEvent.orphan.is_(True)))).scalars().all()
        assert [o.payload["event"]["sg_message_id"] for o in orphan] == ["m" * 500]
