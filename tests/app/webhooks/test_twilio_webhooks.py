"""Twilio callbacks at one URL for every tenant: authentication, dedupe, disorder and bad input."""

from __future__ import annotations

import secrets
import uuid
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from app.core.db import session_factory
from app.notify.models import Attempt, ProviderEvent
from app.webhooks.models import RawEvent
from channels.signatures import compute_twilio_signature
from tests.conftest import GATEWAY_URL
from tests.support.gateway import notify, read, settle, wired_tenant

FORM = "application/x-www-form-urlencoded"


def status_form(account_sid: str, sid: str, status: str, **extra: str) -> list[tuple[str, str]]:
    return [
        ("AccountSid", account_sid),
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("MessageStatus", status),
        ("SmsStatus", status),
        ("ApiVersion", "2010-04-01"),
        ("ChannelPrefix", "whatsapp"),
        *((k, v) for k, v in extra.items()),
    ]


async def post_signed(
    client, path: str, pairs, token: str, *, query: str = "", sign_url: str | None = None, headers=None
):
    url = GATEWAY_URL + path + (f"?{query}" if query else "")
    signature = compute_twilio_signature(token, sign_url or url, pairs)
    return await client.post(
        path + (f"?{query}" if query else ""),
        content=urlencode(pairs),
        headers={"Content-Type": FORM, "X-Twilio-Signature": signature, **(headers or {})},
    )


async def raw_events(kind: str | None = None) -> int:
    async with session_factory()() as s:
        stmt = select(func.count()).select_from(RawEvent)
        if kind:
            stmt = stmt.where(RawEvent.kind == kind)
        return (await s.execute(stmt)).scalar_one()


@pytest.fixture
async def tenant(client, emulator, gateway):
    return await wired_tenant(client, emulator, gateway)


async def test_signed_status_for_unknown_message_is_kept_as_orphan(client, tenant, worker, emulator):
    sid = "SM" + secrets.token_hex(16)
    r = await post_signed(
        client,
        "/webhooks/twilio/status",
        status_form(tenant.account["account_sid"], sid, "delivered"),
        tenant.account["auth_token"],
    )
    assert r.status_code == 204 and r.content == b""
    await settle(emulator)
    async with session_factory()() as s:
        event = (await s.execute(select(RawEvent))).scalar_one()
        assert event.orphan and event.processed_at is not None


async def test_unknown_account_and_bad_signature_get_the_same_403(client, tenant):
    pairs = status_form("AC" + "0" * 32, "SM" + "1" * 32, "sent")
    unknown = await post_signed(client, "/webhooks/twilio/status", pairs, "f" * 32)
    pairs = status_form(tenant.account["account_sid"], "SM" + "1" * 32, "sent")
    forged = await post_signed(client, "/webhooks/twilio/status", pairs, "f" * 32)
    assert unknown.status_code == forged.status_code == 403
    strip = lambda body: {k: v for k, v in body.items() if k not in ("request_id",)}  # noqa: E731
    assert strip(unknown.json()) == strip(forged.json())
    missing = await client.post("/webhooks/twilio/status", content=urlencode(pairs), headers={"Content-Type": FORM})
    assert missing.status_code == 403
    assert await raw_events() == 0


async def test_signature_must_cover_the_exact_public_url(client, tenant):
    pairs = status_form(tenant.account["account_sid"], "SM" + "2" * 32, "sent")
    token = tenant.account["auth_token"]
    for wrong in (
        GATEWAY_URL.replace("http://", "https://") + "/webhooks/twilio/status",
        "http://evil.example/webhooks/twilio/status",
        GATEWAY_URL + "/webhooks/twilio/inbound",
    ):
        r = await post_signed(client, "/webhooks/twilio/status", pairs, token, sign_url=wrong)
        assert r.status_code == 403, wrong
    # Query strings are part of what is signed.
    r = await post_signed(
        client,
        "/webhooks/twilio/status",
        pairs,
        token,
        query="a=1",
        sign_url=GATEWAY_URL + "/webhooks/twilio/status?a=2",
    )
    assert r.status_code == 403
    # Any changed parameter invalidates it.
    signature = compute_twilio_signature(token, GATEWAY_URL + "/webhooks/twilio/status", pairs)
    tampered = [(k, "read" if k == "MessageStatus" else v) for k, v in pairs]
    r = await client.post(
        "/webhooks/twilio/status",
        content=urlencode(tampered),
        headers={"Content-Type": FORM, "X-Twilio-Signature": signature},
    )
    assert r.status_code == 403
    assert await raw_events() == 0


async def test_tenant_cannot_touch_another_tenants_message(client, emulator, gateway, worker):
    a = await wired_tenant(client, emulator, gateway)
    b = await wired_tenant(client, emulator, gateway)
    nid = await notify(client, b)
    await settle(emulator)
    b_attempt = (await read(client, b, nid))["attempts"][0]
    before = b_attempt["status"]
    # Correctly signed by A, naming B's MessageSid, or B's attempt id. The answer is the same 204 as for
    # any SID A does not know, so it tells A nothing about B; the worker applying it looks only in A's.
    pairs = status_form(a.account["account_sid"], b_attempt["provider_message_id"], "failed", ErrorCode="63016")
    r = await post_signed(client, "/webhooks/twilio/status", pairs, a.account["auth_token"])
    assert r.status_code == 204
    pairs = status_form(a.account["account_sid"], "SM" + "3" * 32, "failed", ErrorCode="63016")
    r = await post_signed(
        client, "/webhooks/twilio/status", pairs, a.account["auth_token"], query=f"a={b_attempt['id']}"
    )
    assert r.status_code == 204
    await settle(emulator)
    assert (await read(client, b, nid))["attempts"][0]["status"] == before
    async with session_factory()() as s:
        forged = (await s.execute(select(RawEvent).where(RawEvent.tenant_id == uuid.UUID(a.id)))).scalars().all()
    assert len(forged) == 2 and all(e.orphan for e in forged)


async def test_malformed_bodies_are_400_and_huge_ones_413(client, tenant):
    _token, sid = tenant.account["auth_token"], tenant.account["account_sid"]
    r = await client.post("/webhooks/twilio/status", json={"AccountSid": sid}, headers={"X-Twilio-Signature": "x"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
    for body in (
        b"AccountSid=" + sid.encode() + b"&Body=\xff\xfe",
        b"AccountSid=" + sid.encode() + b"&Body=a%00b",
        b"no-equals-sign",
    ):
        r = await client.post(
            "/webhooks/twilio/inbound", content=body, headers={"Content-Type": FORM, "X-Twilio-Signature": "x"}
        )
        assert r.status_code == 400, body
    r = await client.post(
        "/webhooks/twilio/status",
        content=b"AccountSid=" + b"A" * 70_000,
        headers={"Content-Type": FORM, "X-Twilio-Signature": "x"},
    )
    assert r.status_code == 413
    assert await raw_events() == 0


async def test_ten_replays_of_one_callback_are_stored_once(client, tenant, worker, emulator):
    pairs = status_form(tenant.account["account_sid"], "SM" + "4" * 32, "delivered")
    for _ in range(10):
        r = await post_signed(
            client,
            "/webhooks/twilio/status",
            pairs,
            tenant.account["auth_token"],
            headers={"I-Twilio-Idempotency-Token": "tok-1"},
        )
        assert r.status_code == 204
    # Without the token, (MessageSid, MessageStatus) is the key.
    for _ in range(3):
        assert (
            await post_signed(client, "/webhooks/twilio/status", pairs, tenant.account["auth_token"])
        ).status_code == 204
    assert await raw_events("status") == 2
    await settle(emulator)
    async with session_factory()() as s:
        assert (await s.execute(select(func.count()).select_from(ProviderEvent))).scalar_one() == 2


async def test_read_before_delivered_keeps_both_and_ends_read(client, tenant, worker, emulator):
    nid = await notify(client, tenant)
    await settle(emulator)
    attempt = (await read(client, tenant, nid))["attempts"][0]
    sid, token = attempt["provider_message_id"], tenant.account["auth_token"]
    query = f"n={nid}&a={attempt['id']}"
    for status in ("read", "delivered", "sent"):
        await post_signed(
            client,
            "/webhooks/twilio/status",
            status_form(tenant.account["account_sid"], sid, status),
            token,
            query=query,
            headers={"I-Twilio-Idempotency-Token": secrets.token_hex(8)},
        )
    await settle(emulator)
    n = await read(client, tenant, nid)
    assert n["status"] == "read"
    late = [e for e in n["events"] if not e["applied"]]
    assert {e["status"] for e in late} >= {"delivered", "sent"}


async def test_inbound_answers_empty_twiml(client, tenant):
    pairs = [
        ("AccountSid", tenant.account["account_sid"]),
        ("MessageSid", "SM" + "5" * 32),
        ("From", "whatsapp:+14155550123"),
        ("To", tenant.account["whatsapp_from"]),
        ("Body", "hi"),
        ("NumMedia", "0"),
    ]
    r = await post_signed(client, "/webhooks/twilio/inbound", pairs, tenant.account["auth_token"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
    assert r.text.endswith("<Response/>")


async def test_inbound_with_no_identity_is_acknowledged_and_stored(client, tenant, worker, emulator):
    pairs = [("AccountSid", tenant.account["account_sid"]), ("MessageSid", "SM" + "6" * 32), ("Body", "??")]
    r = await post_signed(client, "/webhooks/twilio/inbound", pairs, tenant.account["auth_token"])
    assert r.status_code == 200
    await settle(emulator)
    async with session_factory()() as s:
        from app.webhooks.models import InboundMessage

        msg = (await s.execute(select(InboundMessage))).scalar_one()
        assert msg.contact_id is None and msg.body == "??"


async def test_worker_death_after_twilio_accepted_is_healed_by_the_callback(client, tenant, worker, emulator):
    """The StatusCallback carries our attempt id, so the SID is linked even if the send job never recorded it."""
    nid = await notify(client, tenant)
    await settle(emulator)
    attempt_id = (await read(client, tenant, nid))["attempts"][0]["id"]
    async with session_factory()() as s:
        row = await s.get(Attempt, __import__("uuid").UUID(attempt_id))
        row.provider_message_id, row.status = None, "sending"
        await s.commit()
    sid = "SM" + secrets.token_hex(16)
    await post_signed(
        client,
        "/webhooks/twilio/status",
        status_form(tenant.account["account_sid"], sid, "delivered"),
        tenant.account["auth_token"],
        query=f"n={nid}&a={attempt_id}",
    )
    await settle(emulator)
    healed = (await read(client, tenant, nid))["attempts"][0]
    assert healed["provider_message_id"] == sid and healed["status"] == "delivered"


async def test_a_signed_callback_whose_query_postgresql_cannot_store_is_422_not_500(client, tenant):
    # The one INSERT runs on the driver itself (app/core/db.py fetch_autocommitted): its errors must
    # still reach the problem handlers as SQLAlchemy's, and the connection must serve the next request.
    pairs = status_form(tenant.account["account_sid"], "SM" + "7" * 32, "delivered")
    r = await post_signed(client, "/webhooks/twilio/status", pairs, tenant.account["auth_token"], query="n=a%00b")
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await raw_events() == 0
    r = await post_signed(client, "/webhooks/twilio/status", pairs, tenant.account["auth_token"], query="n=ab")
    assert r.status_code == 204 and await raw_events("status") == 1
