"""The routing pipeline end to end: gateway server, Dramatiq worker on Redis, and the emulator."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from app.core.db import session_factory
from app.notify.models import Attempt
from tests.support.gateway import TEMPLATE_KEY, notify, read, settle, wired_tenant

pytestmark = pytest.mark.usefixtures("worker")


def sent_form(emulator, sid: str) -> dict[str, str]:
    return dict(emulator.message(sid)["request"])


def steps(n: dict) -> dict[str, str]:
    return {d["step"]: d["result"] for d in n["decisions"]}


async def test_template_outside_window_is_delivered_and_read(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    nid = await notify(client, t)
    await settle(emulator)
    n = await read(client, t, nid)
    assert n["status"] == "read" and n["channel"] == "whatsapp", n
    assert steps(n)["window"] == "closed" and steps(n)["send"] == "template"
    (attempt,) = n["attempts"]
    assert attempt["kind"] == "template" and attempt["provider_message_id"].startswith(("SM", "MM"))
    sent = sent_form(emulator, attempt["provider_message_id"])
    assert sent["ContentSid"] == t.content_sid
    assert json.loads(sent["ContentVariables"]) == {"1": "Ava", "2": "18473"}
    assert "Body" not in sent and "MediaUrl" not in sent
    assert [e["status"] for e in n["events"] if e["applied"]][-1] == "read"


async def test_session_text_inside_window(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    emulator.inbound(t.account["account_sid"], from_="+14155550123", body="hello there")
    await settle(emulator)
    nid = await notify(client, t, text="Your table is ready", to={"phone": "+14155550123"})
    await settle(emulator)
    n = await read(client, t, nid)
    assert steps(n)["window"] == "open" and n["attempts"][0]["kind"] == "session", n
    assert n["status"] in ("delivered", "read")
    assert sent_form(emulator, n["attempts"][0]["provider_message_id"])["Body"] == "Your table is ready"


async def test_text_outside_window_falls_back_to_email(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    nid = await notify(client, t, text="Where are you?")
    await settle(emulator)
    n = await read(client, t, nid)
    assert n["channel"] == "email" and n["status"] == "delivered", n
    assert steps(n)["window"] == "closed" and steps(n)["fallback"] == "email"
    (mail,) = emulator.sendgrid_messages(api_key=t.sendgrid["api_key"])
    assert mail["request"]["personalizations"][0]["to"][0]["email"] == "ava@example.com"
    assert [a["channel"] for a in n["attempts"]] == ["email"]


async def test_no_consent_when_opt_in_is_required(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway, opt_in_required=True)
    nid = await notify(client, t)
    await settle(emulator)
    n = await read(client, t, nid)
    assert steps(n)["consent"] == "missing" and n["channel"] == "email", n
    await client.post(
        "/v1/consents",
        headers=t.admin,
        json={"phone": "+14155550123", "channel": "whatsapp", "status": "granted", "source": "test", "proof": "yes"},
    )
    n2 = await read(client, t, await notify(client, t))
    await settle(emulator)
    n2 = await read(client, t, n2["id"])
    assert steps(n2)["consent"] == "granted" and n2["channel"] == "whatsapp"


async def test_no_twilio_credentials_goes_to_email(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    assert (await client.delete("/v1/providers/twilio", headers=t.admin)).status_code == 204
    n = await read(client, t, await notify(client, t))
    await settle(emulator)
    n = await read(client, t, n["id"])
    assert steps(n)["credentials"] == "missing" and n["channel"] == "email" and n["status"] == "delivered"


async def test_window_closed_callback_falls_back_exactly_once(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    nid = await notify(client, t, to={"phone": "+15005550006", "email": "ava@example.com"})
    await settle(emulator)
    n = await read(client, t, nid)
    wa = [a for a in n["attempts"] if a["channel"] == "whatsapp"]
    assert wa[0]["status"] == "failed" and wa[0]["error_code"] == "63016" and wa[0]["error_class"] == "window_closed"
    assert n["channel"] == "email" and len(emulator.sendgrid_messages(api_key=t.sendgrid["api_key"])) == 1


async def test_unsubscribed_at_send_time_suppresses_and_falls_back(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    nid = await notify(client, t, to={"phone": "+15005550002", "email": "ava@example.com"})
    await settle(emulator)
    n = await read(client, t, nid)
    assert n["attempts"][0]["error_class"] == "opted_out" and n["channel"] == "email"
    sup = (await client.get("/v1/suppressions", params={"phone": "+15005550002"}, headers=t.admin)).json()["items"]
    assert [s["channel"] for s in sup] == ["whatsapp"]
    again = await read(client, t, await notify(client, t, to={"phone": "+15005550002", "email": "ava@example.com"}))
    await settle(emulator)
    again = await read(client, t, again["id"])
    assert steps(again)["suppression"] == "suppressed" and again["channel"] == "email"
    assert len([m for m in emulator.messages(account_sid=t.account["account_sid"])]) == 0  # 21610 created no message


async def test_rate_limited_then_retried(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    n = await read(client, t, await notify(client, t, to={"phone": "+15005550003"}))
    await settle(emulator)
    n = await read(client, t, n["id"])
    (attempt,) = n["attempts"]
    assert attempt["tries"] == 3 and attempt["status"] in ("delivered", "read"), n
    assert [d["result"] for d in n["decisions"] if d["step"] == "retry"] == ["rate_limited", "rate_limited"]


async def test_server_error_then_retried(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    n = await read(client, t, await notify(client, t, to={"phone": "+15005550004"}))
    await settle(emulator)
    n = await read(client, t, n["id"])
    assert n["attempts"][0]["tries"] == 2 and n["status"] in ("delivered", "read")


async def test_invalid_recipient_fails_over_to_email(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    n = await read(client, t, await notify(client, t, to={"phone": "+15005550001", "email": "ava@example.com"}))
    await settle(emulator)
    n = await read(client, t, n["id"])
    assert n["attempts"][0]["error_class"] == "invalid_recipient" and n["channel"] == "email"


async def test_undelivered_is_failed_then_email(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    n = await read(client, t, await notify(client, t, to={"phone": "+15005550007", "email": "ava@example.com"}))
    await settle(emulator)
    n = await read(client, t, n["id"])
    wa = n["attempts"][0]
    assert wa["status"] == "undelivered" and wa["error_code"] == "30003" and n["channel"] == "email"


async def test_duplicated_out_of_order_callbacks_end_in_read(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    n = await read(client, t, await notify(client, t, to={"phone": "+15005550008"}))
    await settle(emulator)
    n = await read(client, t, n["id"])
    assert n["status"] == "read"
    applied = [e["status"] for e in n["events"] if e["applied"]]
    assert applied == sorted(set(applied), key=applied.index), "each real transition applied once"
    assert "delivered" not in applied[applied.index("read") :]
    assert len(n["events"]) > len(applied)  # the late and duplicate ones are kept, not applied


async def test_bad_credentials_mark_twilio_invalid_and_fall_back(client, emulator, gateway):
    from tenants.credentials.models import TwilioCredential
    from tenants.credentials.sealing import seal

    t = await wired_tenant(client, emulator, gateway)
    async with session_factory()() as s:  # Twilio later revokes the token the tenant gave us
        row = (
            await s.execute(select(TwilioCredential).where(TwilioCredential.account_sid == t.account["account_sid"]))
        ).scalar_one()
        row.auth_token_enc = seal(row.tenant_id, "twilio_credentials", "auth_token_enc", "0" * 32)
        row.api_key_sid = row.api_key_secret_enc = None
        row.version += 1
        await s.commit()
    n = await read(client, t, await notify(client, t))
    await settle(emulator)
    n = await read(client, t, n["id"])
    assert n["attempts"][0]["error_class"] == "bad_credentials" and n["channel"] == "email"
    creds = (await client.get("/v1/providers/twilio", headers=t.admin)).json()
    assert creds["status"] == "invalid"
    later = await read(client, t, await notify(client, t))
    await settle(emulator)
    assert steps(await read(client, t, later["id"]))["credentials"] == "invalid"


async def test_test_mode_keys_reach_no_provider(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    r = await client.post(
        f"/operator/v1/tenants/{t.id}/api-keys",
        headers={"Authorization": f"Bearer {__import__('tests.conftest', fromlist=['x']).OPERATOR_TOKEN}"},
        json={"name": "t", "scopes": ["notifications:send", "notifications:read"], "environment": "test"},
    )
    headers = {"Authorization": f"Bearer {r.json()['key']}"}
    resp = await client.post(
        "/v1/notifications",
        headers=headers,
        json={"to": {"phone": "+14155550123"}, "template": TEMPLATE_KEY, "variables": {"name": "A", "order": "1"}},
    )
    await settle(emulator)
    n = (await client.get(f"/v1/notifications/{resp.json()['id']}", headers=headers)).json()
    assert n["attempts"][0]["provider"] == "simulated" and n["status"] == "delivered"
    assert emulator.messages(account_sid=t.account["account_sid"]) == []
    async with session_factory()() as s:
        assert (await s.execute(select(Attempt))).scalars().one().provider_message_id.startswith("SIM")
