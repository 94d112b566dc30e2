"""STOP/START end to end, SendGrid signed events, and replay."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.core.db import session_factory
from app.notify.models import ProviderEvent
from app.webhooks import keywords
from app.webhooks.cli import replay_events
from channels.signatures import sign_sendgrid_event
from tests.support.gateway import notify, read, settle, wired_tenant

USER = "+14155550123"


def test_keyword_matching_ignores_case_space_and_punctuation():
    for body in ("STOP", " stop ", "Stop!", "¡PARAR!", "arrêt.", "Unsubscribe", "basta"):
        assert keywords.match(body) == "stop", body
    for body in ("START", "unstop", " Subscribe. "):
        assert keywords.match(body) == "start", body
    for body in ("please stop", "stopped", "", None, "starting"):
        assert keywords.match(body) is None, body
    assert keywords.match("HALT", extra_stop=["halt"]) == "stop"


@given(
    st.sampled_from(keywords.DEFAULT_STOP),
    st.text(alphabet=" \t\n.,!?¡¿", max_size=4),
    st.text(alphabet=" \t\n.,!?", max_size=4),
    st.booleans(),
)
def test_any_stop_word_with_any_padding_matches(word, before, after, upper):
    assert keywords.match(before + (word.upper() if upper else word) + after) == "stop"


async def test_stop_then_start_end_to_end(client, emulator, gateway, worker):
    t = await wired_tenant(client, emulator, gateway)
    sid = t.account["account_sid"]
    emulator.inbound(sid, from_=USER, body="Stop!")
    await settle(emulator)

    sup = (await client.get("/v1/suppressions", params={"phone": USER}, headers=t.admin)).json()["items"]
    assert len(sup) == 1 and sup[0]["source"] == "inbound_keyword" and sup[0]["evidence"].startswith("SM")
    consent = (await client.get("/v1/consents", params={"phone": USER}, headers=t.admin)).json()
    assert consent["state"]["whatsapp"] == "withdrawn" and consent["history"][0]["source"] == "inbound_keyword"
    confirmations = [m for m in emulator.messages(account_sid=sid, to=f"whatsapp:{USER}")]
    assert len(confirmations) == 1
    assert dict(confirmations[0]["request"])["Body"] == "You are opted out. Reply START to re-subscribe."

    n = await read(client, t, await notify(client, t, to={"phone": USER, "email": "ava@example.com"}))
    await settle(emulator)
    n = await read(client, t, n["id"])
    assert n["channel"] == "email" and any(
        d["step"] == "suppression" and d["result"] == "suppressed" for d in n["decisions"]
    )

    emulator.inbound(sid, from_=USER, body="START")
    await settle(emulator)
    assert (await client.get("/v1/suppressions", params={"phone": USER}, headers=t.admin)).json()["items"] == []
    again = await read(client, t, await notify(client, t, to={"phone": USER, "email": "ava@example.com"}))
    await settle(emulator)
    assert (await read(client, t, again["id"]))["channel"] == "whatsapp"
    # A new STOP after START confirms again; a repeated STOP while suppressed does not.
    emulator.inbound(sid, from_=USER, body="stop")
    emulator.inbound(sid, from_=USER, body="stop")
    await settle(emulator)
    assert (
        len(
            [
                m
                for m in emulator.messages(account_sid=sid, to=f"whatsapp:{USER}")
                if dict(m["request"]).get("Body", "").startswith("You are opted out")
            ]
        )
        == 2
    )


async def test_tenant_stop_words_and_confirmation_text(client, emulator, gateway, worker):
    t = await wired_tenant(client, emulator, gateway)
    policy = (await client.get("/v1/routing", headers=t.admin)).json()
    policy["inbound"] = {"stop_words": ["halt"], "start_words": [], "opt_out_confirmation": "Bye!"}
    assert (await client.put("/v1/routing", json=policy, headers=t.admin)).status_code == 200
    emulator.inbound(t.account["account_sid"], from_=USER, body="HALT")
    await settle(emulator)
    (msg,) = emulator.messages(account_sid=t.account["account_sid"], to=f"whatsapp:{USER}")
    assert dict(msg["request"])["Body"] == "Bye!"


async def test_sendgrid_events_update_email_attempt_and_bounce_suppresses(client, emulator, gateway, worker):
    t = await wired_tenant(client, emulator, gateway)
    n = await read(
        client, t, await notify(client, t, text="hi", channels=["email"], to={"email": "bounce@example.com"})
    )
    await settle(emulator)
    n = await read(client, t, n["id"])
    assert n["status"] == "failed" and n["attempts"][0]["error_class"] == "bounced", n
    sup = (await client.get("/v1/suppressions", params={"email": "bounce@example.com"}, headers=t.admin)).json()[
        "items"
    ]
    assert sup and sup[0]["channel"] == "email" and sup[0]["source"] == "sendgrid_event"
    later = await read(
        client, t, await notify(client, t, text="again", channels=["email"], to={"email": "bounce@example.com"})
    )
    await settle(emulator)
    assert (await read(client, t, later["id"]))["status"] == "suppressed"


async def test_sendgrid_webhook_rejects_bad_signatures(client, emulator, gateway):
    from cryptography.hazmat.primitives.asymmetric import ec

    t = await wired_tenant(client, emulator, gateway)
    body = json.dumps(
        [{"event": "delivered", "email": "a@b.co", "sg_event_id": "x1", "timestamp": int(time.time())}]
    ).encode()
    stamp = str(int(time.time()))
    impostor = ec.generate_private_key(ec.SECP256R1())
    r = await client.post(
        f"/webhooks/sendgrid/{t.id}",
        content=body,
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": sign_sendgrid_event(impostor, body, stamp),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
            "Content-Type": "application/json",
        },
    )
    assert r.status_code == 403
    r = await client.post(f"/webhooks/sendgrid/{t.id}", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 403
    other = await wired_tenant(client, emulator, gateway)
    await client.put(
        "/v1/providers/sendgrid",
        headers=other.admin,
        json={"api_key": other.sendgrid["api_key"], "from_email": "n@example.com"},
    )  # no public key registered
    r = await client.post(f"/webhooks/sendgrid/{other.id}", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 403


async def test_replay_changes_nothing_already_applied(client, emulator, gateway, worker):
    t = await wired_tenant(client, emulator, gateway)
    nid = await notify(client, t)
    emulator.inbound(t.account["account_sid"], from_=USER, body="STOP")
    await settle(emulator)
    before = await read(client, t, nid)
    async with session_factory()() as s:
        events_before = (await s.execute(select(func.count()).select_from(ProviderEvent))).scalar_one()
    count = await replay_events(datetime.now(UTC) - timedelta(hours=1), None, None)
    assert count >= 3
    await settle(emulator)
    after = await read(client, t, nid)
    assert after["status"] == before["status"] and len(after["events"]) == len(before["events"])
    async with session_factory()() as s:
        assert (await s.execute(select(func.count()).select_from(ProviderEvent))).scalar_one() == events_before
    consent = (await client.get("/v1/consents", params={"phone": USER}, headers=t.admin)).json()
    assert len(consent["history"]) == 1
