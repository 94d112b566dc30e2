"""GET /v1/messages: a tenant reads back the WhatsApp messages people sent it (issue 14, part 5)."""

from __future__ import annotations

import pytest

from tests.factories import bearer, make_key
from tests.support.gateway import settle, wired_tenant

pytestmark = pytest.mark.usefixtures("worker")

AVA, BEN = "+14155550123", "+14155550124"


async def listed(client, tenant, **params) -> list[dict]:
    r = await client.get("/v1/messages", params=params, headers=tenant.sender)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def inbox(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    for sender, body in ((AVA, "Hello World"), (AVA, "where is my ORDER? 50% off?"), (BEN, "second person")):
        emulator.inbound(t.account["account_sid"], from_=sender, body=body)
        await settle(emulator)  # one at a time: each is received after the one before
    return t


async def test_filters_by_contact_time_and_text(client, emulator, gateway):
    t = await inbox(client, emulator, gateway)
    items = await listed(client, t)
    assert [m["body"] for m in items] == ["second person", "where is my ORDER? 50% off?", "Hello World"]
    newest, middle, oldest = items
    assert newest["from"] == f"whatsapp:{BEN}" and newest["message_sid"].startswith("SM")
    assert oldest["contact_id"] == middle["contact_id"] != newest["contact_id"]

    by_ava = await listed(client, t, contact=oldest["contact_id"])
    assert [m["id"] for m in by_ava] == [middle["id"], oldest["id"]]

    assert [m["id"] for m in await listed(client, t, q="order")] == [middle["id"]]  # any case
    assert [m["id"] for m in await listed(client, t, q="WORLD")] == [oldest["id"]]
    assert [m["id"] for m in await listed(client, t, q="50%")] == [middle["id"]]
    assert await listed(client, t, q="_") == []  # LIKE's wildcards are taken literally
    assert await listed(client, t, q="nobody wrote this") == []

    since = await listed(client, t, since=middle["received_at"])
    assert [m["id"] for m in since] == [newest["id"], middle["id"]]  # since is inclusive
    until = await listed(client, t, until=middle["received_at"])
    assert [m["id"] for m in until] == [oldest["id"]]  # until is exclusive
    both = await listed(
        client, t, since=middle["received_at"], until=newest["received_at"], contact=middle["contact_id"]
    )
    assert [m["id"] for m in both] == [middle["id"]]


async def test_pages_with_a_cursor(client, emulator, gateway):
    t = await inbox(client, emulator, gateway)
    seen, cursor = [], None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/messages", params=params, headers=t.sender)).json()
        seen += [m["body"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["second person", "where is my ORDER? 50% off?", "Hello World"]


async def test_another_tenants_messages_never_show(client, emulator, gateway):
    mine = await wired_tenant(client, emulator, gateway)
    theirs = await wired_tenant(client, emulator, gateway)
    emulator.inbound(mine.account["account_sid"], from_=AVA, body="for mine")
    emulator.inbound(theirs.account["account_sid"], from_=AVA, body="for theirs")
    await settle(emulator)
    (their_message,) = await listed(client, theirs)
    assert their_message["body"] == "for theirs"
    assert [m["body"] for m in await listed(client, mine)] == ["for mine"]
    assert await listed(client, mine, contact=their_message["contact_id"]) == []
    assert await listed(client, mine, q="theirs") == []


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"contact": "not-a-uuid"}, 422),
        ({"since": "yesterday"}, 422),
        ({"until": "2026-13-01T00:00:00Z"}, 422),
        ({"since": "2026-12-02T10:00:00Z", "until": "2026-12-02T09:00:00Z"}, 422),
        ({"since": "2026-12-02T10:00:00Z", "until": "2026-12-02T10:00:00Z"}, 422),
        ({"limit": 0}, 422),
        ({"limit": 201}, 422),
        ({"cursor": "!!not-ours!!"}, 422),
        ({"q": "x" * 201}, 422),
        ({"q": "a\x00b"}, 422),
    ],
)
async def test_bad_params_are_problems(client, emulator, gateway, params, status):
    t = await wired_tenant(client, emulator, gateway)
    r = await client.get("/v1/messages", params=params, headers=t.sender)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_test_keys_and_the_operator_cannot_read_them(client, emulator, gateway):
    from tests.factories import OPERATOR

    t = await wired_tenant(client, emulator, gateway)
    test_key = bearer(await make_key(client, t.id, ["notifications:read"], environment="test"))
    r = await client.get("/v1/messages", headers=test_key)
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/v1/messages", headers=OPERATOR)).status_code in (401, 403)
    no_scope = bearer(await make_key(client, t.id, ["notifications:send"]))
    assert (await client.get("/v1/messages", headers=no_scope)).status_code == 403
