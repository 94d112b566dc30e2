"""Provider credentials: verified with the provider (the emulator) before storing, masked on read."""

from __future__ import annotations

import socket

from sqlalchemy import select

from app.core import providers
from app.core.db import session_factory
from channels.sendgrid_email import SendGridEmail
from channels.twilio_whatsapp import TwilioWhatsApp
from tenants.credentials.models import SendgridCredential, TwilioCredential
from tests.factories import bearer, make_key, tenant_with_key


def twilio_body(account: dict, **over) -> dict:
    body = {
        "account_sid": account["account_sid"],
        "auth_token": account["auth_token"],
        "api_key_sid": account["api_key_sid"],
        "api_key_secret": account["api_key_secret"],
        "messaging_service_sid": account["messaging_service_sid"],
        "whatsapp_from": account["whatsapp_from"],
    }
    return {**body, **over}


async def stored_twilio() -> list[TwilioCredential]:
    async with session_factory()() as s:
        return list((await s.execute(select(TwilioCredential))).scalars())


async def test_put_get_delete_twilio_masked_and_audited(client, emulator):
    _, admin = await tenant_with_key(client, ["admin"])
    account = emulator.create_account()
    r = await client.put("/v1/providers/twilio", json=twilio_body(account), headers=admin)
    assert r.status_code == 200, r.text
    got = (await client.get("/v1/providers/twilio", headers=admin)).json()
    assert got["auth_token"] == "…" + account["auth_token"][-4:]
    assert got["api_key_secret"] == "…" + account["api_key_secret"][-4:]
    assert got["account_sid"] == account["account_sid"] and got["status"] == "valid"
    assert account["auth_token"] not in r.text
    audit = (await client.get("/v1/audit-log", params={"target_type": "twilio_credentials"}, headers=admin)).json()[
        "items"
    ]
    assert audit[0]["action"] == "provider.twilio.created" and audit[0]["after"]["auth_token"].startswith("…")
    assert account["auth_token"] not in str(audit)
    assert (await client.delete("/v1/providers/twilio", headers=admin)).status_code == 204
    assert (await client.get("/v1/providers/twilio", headers=admin)).status_code == 404


async def test_rejected_credentials_are_422_and_nothing_is_stored(client, emulator):
    _, admin = await tenant_with_key(client, ["admin"])
    account = emulator.create_account()
    r = await client.put(
        "/v1/providers/twilio",
        json=twilio_body(account, auth_token="0" * 32, api_key_sid=None, api_key_secret=None),
        headers=admin,
    )
    assert r.status_code == 422 and r.json()["detail"] == "Twilio rejected these credentials"
    assert r.json()["errors"][0]["pointer"] == "/auth_token"
    assert await stored_twilio() == []


async def test_unreachable_twilio_is_503_and_nothing_is_stored(client, emulator, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(providers, "twilio", lambda: TwilioWhatsApp(base_url=dead, timeout=1))
    monkeypatch.setattr(providers, "sendgrid", lambda: SendGridEmail(host=dead, timeout=1))
    _, admin = await tenant_with_key(client, ["admin"])
    r = await client.put("/v1/providers/twilio", json=twilio_body(emulator.create_account()), headers=admin)
    assert r.status_code == 503 and r.headers["retry-after"]
    key = emulator.create_sendgrid_key()
    r = await client.put(
        "/v1/providers/sendgrid", json={"api_key": key["api_key"], "from_email": "a@example.com"}, headers=admin
    )
    assert r.status_code == 503
    assert await stored_twilio() == []


async def test_one_account_sid_per_tenant(client, emulator):
    _, admin_a = await tenant_with_key(client, ["admin"])
    _, admin_b = await tenant_with_key(client, ["admin"])
    account = emulator.create_account()
    assert (await client.put("/v1/providers/twilio", json=twilio_body(account), headers=admin_a)).status_code == 200
    r = await client.put("/v1/providers/twilio", json=twilio_body(account), headers=admin_b)
    assert r.status_code == 409 and r.json()["errors"][0]["pointer"] == "/account_sid"
    # The owner may update its own record.
    assert (
        await client.put(
            "/v1/providers/twilio", json=twilio_body(account, whatsapp_from="whatsapp:+14155550100"), headers=admin_a
        )
    ).status_code == 200
    rows = await stored_twilio()
    assert len(rows) == 1 and rows[0].version == 2


async def test_another_tenants_account_sid_is_not_disclosed_to_a_wrong_token(client, emulator):
    """Only a caller whose credentials Twilio accepts may learn that the AccountSid is taken."""
    _, owner = await tenant_with_key(client, ["admin"])
    _, prober = await tenant_with_key(client, ["admin"])
    account = emulator.create_account()
    assert (await client.put("/v1/providers/twilio", json=twilio_body(account), headers=owner)).status_code == 200
    dummy = twilio_body(account, auth_token="0" * 32, api_key_sid=None, api_key_secret=None)
    taken = await client.put("/v1/providers/twilio", json=dummy, headers=prober)
    unknown = await client.put("/v1/providers/twilio", json={**dummy, "account_sid": "AC" + "0" * 32}, headers=prober)
    assert taken.status_code == unknown.status_code == 422, (taken.text, unknown.text)
    assert {k: v for k, v in taken.json().items() if k != "request_id"} == {
        k: v for k, v in unknown.json().items() if k != "request_id"
    }
    assert "another tenant" not in taken.text
    rows = await stored_twilio()
    assert len(rows) == 1 and rows[0].version == 1  # the owner's record is untouched


async def test_bad_credential_input_points_at_the_field(client):
    _, admin = await tenant_with_key(client, ["admin"])
    good = {"account_sid": "AC" + "a" * 32, "auth_token": "b" * 32}
    cases = {
        "/account_sid": {**good, "account_sid": "AC123"},
        "/auth_token": {**good, "auth_token": " " + "b" * 32},
        "/api_key_sid": {**good, "api_key_sid": "SKnope", "api_key_secret": "x" * 32},
        "/api_key_secret": {**good, "api_key_sid": "SK" + "c" * 32},
        "/messaging_service_sid": {**good, "messaging_service_sid": "MG"},
        "/whatsapp_from": {**good, "whatsapp_from": "+14155550100"},
        "/extra": {**good, "extra": "x"},
    }
    for pointer, body in cases.items():
        r = await client.put("/v1/providers/twilio", json=body, headers=admin)
        assert r.status_code == 422, (pointer, r.text)
        assert r.json()["errors"][0]["pointer"] == pointer, (pointer, r.json())
    bad_sendgrid = {
        "/api_key": {"api_key": "not-a-key", "from_email": "a@example.com"},
        "/from_email": {"api_key": "SG.abcdefghij.klmnopqrstuv", "from_email": "nope"},
        "/event_webhook_public_key": {
            "api_key": "SG.abcdefghij.klmnopqrstuv",
            "from_email": "a@example.com",
            "event_webhook_public_key": "A" * 60,
        },
    }
    for pointer, body in bad_sendgrid.items():
        r = await client.put("/v1/providers/sendgrid", json=body, headers=admin)
        assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == pointer, (pointer, r.text)
    assert await stored_twilio() == []


async def test_sendgrid_put_verifies_and_masks(client, emulator):
    tenant, admin = await tenant_with_key(client, ["admin"])
    key = emulator.create_sendgrid_key()
    body = {
        "api_key": key["api_key"],
        "from_email": "notify@example.com",
        "from_name": "Acme",
        "event_webhook_public_key": key["event_webhook_public_key"],
    }
    r = await client.put("/v1/providers/sendgrid", json=body, headers=admin)
    assert r.status_code == 200 and r.json()["api_key"] == "…" + key["api_key"][-4:]
    r = await client.put(
        "/v1/providers/sendgrid", json={**body, "api_key": "SG.wrongwrongwrong.wrongwrongwrongwrong"}, headers=admin
    )
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/api_key"
    async with session_factory()() as s:
        row = (await s.execute(select(SendgridCredential))).scalar_one()
        assert key["api_key"] not in row.api_key_enc
    sender = bearer(await make_key(client, tenant["id"], ["notifications:send"]))
    assert (await client.get("/v1/providers/sendgrid", headers=sender)).status_code == 403
