"""GET /v1/usage and the provider error fields on attempts (issue 14, part 5), end to end on the emulator."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from app.usage import service as usage
from tests.factories import bearer, make_key
from tests.support.gateway import notify, read, settle, wired_tenant

pytestmark = pytest.mark.usefixtures("worker")

US, BR = "+14155550123", "+5511987654321"
REFUSED = "+15005550001"  # REST 400, code 21211: never accepted
FAILS_LATER = "+15005550006"  # 201, then a failed callback (63016): accepted, so counted
REQUEST_ID = re.compile(r"RQ[0-9a-f]{32}")


def this_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


async def usage_of(client, headers, **params) -> dict:
    r = await client.get("/v1/usage", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_counts_what_the_providers_accepted(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    template = await notify(client, t, to={"phone": US})  # template outside the window
    emulator.inbound(t.account["account_sid"], from_=BR, body="hi")  # opens BR's window
    await settle(emulator)
    session = await notify(client, t, text="Your table is ready", to={"phone": BR})
    email = await notify(client, t, text="Where are you?", to={"phone": US, "email": "ava@example.com"})
    refused = await notify(client, t, to={"phone": REFUSED})
    failed_later = await notify(client, t, to={"phone": FAILS_LATER})
    await settle(emulator)

    assert (await read(client, t, template))["status"] == "read"
    assert (await read(client, t, session))["attempts"][0]["kind"] == "session"
    assert [a["channel"] for a in (await read(client, t, email))["attempts"]] == ["email"]
    (no_sid,) = (await read(client, t, refused))["attempts"]
    assert no_sid["provider_message_id"] is None and no_sid["status"] == "failed"
    (later,) = (await read(client, t, failed_later))["attempts"]
    assert later["provider_message_id"] and later["status"] == "failed"

    body = await usage_of(client, t.sender)
    assert body["environment"] == "live" and "accepted" in body["counted"]
    (month,) = body["months"]
    assert month["month"] == this_month()
    assert month["total"] == 4  # the refused send is not counted; the one that failed after acceptance is
    assert month["by_channel"] == {"whatsapp": 3, "email": 1}
    assert month["by_category"] == {"UTILITY": 2, "session": 1, "none": 1}  # the synced template is UTILITY
    assert month["by_country"] == {"US": 3, "BR": 1}
    assert sorted((r["channel"], r["category"], r["country"], r["count"]) for r in month["rows"]) == [
        ("email", "none", "US", 1),
        ("whatsapp", "UTILITY", "US", 2),
        ("whatsapp", "session", "BR", 1),
    ]
    assert (await usage_of(client, t.sender, month=this_month())) == body


async def test_months_other_tenants_and_test_keys_are_apart(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    other = await wired_tenant(client, emulator, gateway)
    await notify(client, t, to={"phone": US})
    test_key = bearer(await make_key(client, t.id, ["notifications:send", "notifications:read"], environment="test"))
    r = await client.post(
        "/v1/notifications",
        headers=test_key,
        json={"to": {"phone": US}, "template": "order_shipped", "variables": {"name": "Ava", "order": "1"}},
    )
    assert r.status_code == 202, r.text
    await settle(emulator)

    (live,) = (await usage_of(client, t.sender))["months"]
    assert live["total"] == 1
    test = await usage_of(client, test_key)
    assert test["environment"] == "test" and test["months"][0]["total"] == 1  # its simulated send, apart
    assert (await usage_of(client, other.sender))["months"][0]["total"] == 0

    now = datetime.now(UTC)
    before = f"{now.year - 1:04d}-{now.month:02d}"
    span = (await usage_of(client, t.sender, **{"from": before}))["months"]
    assert len(span) == 13 and span[0]["month"] == before and span[-1]["month"] == this_month()
    assert [m["total"] for m in span] == [0] * 12 + [1]
    assert span[0]["by_channel"] == {"whatsapp": 0, "email": 0} and span[0]["rows"] == []
    (old,) = (await usage_of(client, t.sender, month=before))["months"]
    assert old["total"] == 0


@pytest.mark.parametrize(
    ("params", "pointer"),
    [
        ({"month": "2026-13"}, "/month"),
        ({"month": "12-2026"}, "/month"),
        ({"month": "2026-1"}, "/month"),
        ({"month": "1999-12"}, "/month"),
        ({"month": "2026-11", "from": "2026-10"}, "/month"),
        ({"from": "2026-11", "to": "2026-10"}, "/from"),
        ({"from": "2020-01", "to": "2026-12"}, "/from"),  # more than 24 months
        ({"to": "bad"}, "/to"),
        ({"month": "2026-11-01"}, "/month"),  # longer than YYYY-MM
    ],
)
async def test_bad_months_are_problems(client, emulator, gateway, params, pointer):
    t = await wired_tenant(client, emulator, gateway)
    r = await client.get("/v1/usage", params=params, headers=t.sender)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert pointer in [e["pointer"] for e in r.json()["errors"]]


async def test_attempts_show_the_request_id_and_the_full_error(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    delivered = await notify(client, t, to={"phone": US})
    refused = await notify(client, t, to={"phone": REFUSED})
    failed_later = await notify(client, t, to={"phone": FAILS_LATER})
    await settle(emulator)

    (ok,) = (await read(client, t, delivered))["attempts"]
    assert ok["provider_request_id"] == emulator.message(ok["provider_message_id"])["request_id"]
    assert REQUEST_ID.fullmatch(ok["provider_request_id"])
    assert ok["error_code"] is None and ok["error_more_info"] is None

    (no,) = (await read(client, t, refused))["attempts"]
    assert no["error_code"] == "21211" and no["error_class"] == "invalid_recipient"
    assert no["error_message"].startswith("Invalid 'To' Phone Number")
    assert no["error_more_info"] == "https://www.twilio.com/docs/errors/21211"
    assert REQUEST_ID.fullmatch(no["provider_request_id"])  # the refused request's own id

    (later,) = (await read(client, t, failed_later))["attempts"]
    assert later["error_code"] == "63016" and later["error_message"]
    assert later["error_more_info"] == "https://www.twilio.com/docs/errors/63016"  # a callback has only the code
    assert later["provider_request_id"] == emulator.message(later["provider_message_id"])["request_id"]


async def test_a_failure_callback_ahead_of_the_201_keeps_its_error(client, emulator, gateway):
    """The emulator runs the lifecycle before it answers: the failed callback is applied while the send is
    still waiting, and recording the late 201 must not wipe the error the callback set."""
    t = await wired_tenant(client, emulator, gateway)
    emulator.configure(response_latency_seconds=1.0)
    failed_later = await notify(client, t, to={"phone": FAILS_LATER})
    await settle(emulator)

    body = await read(client, t, failed_later)
    (later,) = body["attempts"]
    assert later["status"] == "failed" and body["status"] == "failed"
    assert later["error_code"] == "63016" and later["error_class"] == "window_closed"
    assert later["provider_request_id"] == emulator.message(later["provider_message_id"])["request_id"]


def test_categories_and_countries() -> None:
    assert usage.category_for("template", {"content_sid": "HX" + "0" * 32, "category": "marketing"}) == "MARKETING"
    synced = {"content_sid": "HX" + "0" * 32, "approval": {"approval_status": "approved", "category": "UTILITY"}}
    assert usage.category_for("template", synced) == "UTILITY"  # what Twilio reported, from the template sync
    unsynced = {"content_sid": "HX" + "0" * 32, "approval": {"approval_status": "unverified"}}
    assert usage.category_for("template", unsynced) == "unknown"
    assert usage.category_for("template", {"content_sid": "HX" + "0" * 32}) == "unknown"
    assert usage.category_for("template", None) == "unknown"
    assert usage.category_for("session") == usage.category_for("media") == "session"
    assert usage.category_for("email") == "none"
    assert usage.country_for("+4915123456789") == "DE"
    assert usage.country_for("whatsapp:+5511987654321") == "BR"
    assert usage.country_for("US.13491208655302741918") is None  # a BSUID names no country
    assert usage.country_for("+80012345678") is None  # international freephone
    assert usage.country_for(None) is None
