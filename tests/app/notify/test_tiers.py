"""Messaging-limit tiers (issue 14 §2, docs/tiers.md): distinct people per WhatsApp sender in 24 h, the policy at
the cap (hold or email), and a 63018 told apart: the emulator's tier (the tier is lowered, with an event and a
metric) or a burst over its MPS (sent again, the tier untouched). End to end: gateway, worker, emulator."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.core.db import session_factory, utcnow
from app.endpoints import urls
from app.notify import tiers
from app.notify.models import WhatsAppConversation, WhatsAppSenderLimit
from tests.app.endpoints.factories import create_endpoint
from tests.factories import OPERATOR
from tests.support.gateway import notify, read, settle, wired_tenant

pytestmark = pytest.mark.usefixtures("worker")

A, B, C, D = "+14155550101", "+14155550102", "+14155550103", "+14155550104"


def decisions(n: dict) -> list[tuple[str, str, str | None]]:
    return [(d["step"], d["result"], d["detail"]) for d in n["decisions"]]


def tier_steps(n: dict) -> list[str]:
    return [d[1] for d in decisions(n) if d[0] == "tier"]


async def send_to(client, t, phone: str, **body) -> str:
    return await notify(client, t, to={"phone": phone, "email": f"p{phone[-3:]}@example.com"}, **body)


async def count(t) -> int:
    async with session_factory()() as s:
        return await tiers.distinct_24h(s, uuid.UUID(t.id), t.account["whatsapp_from"])


async def put_limits(client, t, **limits) -> None:
    policy = {"require_whatsapp_opt_in": False, "whatsapp": {"sender_rate_per_second": 1000, "limits": limits}}
    r = await client.put("/v1/routing", json=policy, headers=t.admin)
    assert r.status_code == 200, r.text


async def assume_tier(t, assumed: int) -> None:
    """As if a 63018 had taught us this sender's tier (the policy's 250 still in force)."""
    now = utcnow()
    async with session_factory()() as s:
        s.add(
            WhatsAppSenderLimit(
                tenant_id=uuid.UUID(t.id),
                sender=t.account["whatsapp_from"],
                configured_tier=250,
                assumed_tier=assumed,
                distinct_at_cap=assumed,
                capped_at=now,
            )
        )
        await s.commit()


def whatsapp_to(emulator, t, phone: str) -> list[dict]:
    return emulator.messages(account_sid=t.account["account_sid"], to="whatsapp:" + phone)


async def metric(client, name: str, **labels: str) -> float:
    text = (await client.get("/metrics", headers=OPERATOR)).text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if m and ",".join(sorted(m.group(1).split(","))) == want:
            return float(m.group(2))
    return 0.0


async def test_distinct_people_are_counted_once_per_sender_and_not_inside_the_window(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    first = await send_to(client, t, A)
    await settle(emulator)
    again, other = await send_to(client, t, A), await send_to(client, t, B)
    await settle(emulator)
    # C wrote to us: a template inside the customer-care window opens no business-initiated conversation.
    emulator.inbound(t.account["account_sid"], from_=C, body="hello")
    await settle(emulator)
    inside = await send_to(client, t, C)
    await settle(emulator)

    assert await count(t) == 2
    assert tier_steps(await read(client, t, first)) == ["opens"]
    assert tier_steps(await read(client, t, again)) == ["already_open"]
    assert tier_steps(await read(client, t, other)) == ["opens"]
    assert tier_steps(await read(client, t, inside)) == []
    for nid in (first, again, other, inside):
        assert (await read(client, t, nid))["channel"] == "whatsapp"
    (opens,) = [d for d in decisions(await read(client, t, other)) if d[0] == "tier"]
    assert "of 250" in (opens[2] or "")  # the default tier of a new sender


async def test_at_the_cap_the_email_policy_sends_a_new_person_by_email(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    await put_limits(client, t, at_cap="email")
    await send_to(client, t, A)
    await settle(emulator)
    await assume_tier(t, 1)  # A fills it

    new = await send_to(client, t, B)
    known = await send_to(client, t, A)  # already in the 24 h set: opens nothing, so it still goes
    await settle(emulator)
    n = await read(client, t, new)
    assert n["channel"] == "email" and n["status"] == "delivered", n
    assert tier_steps(n) == ["at_cap"] and ("fallback", "email", "messaging_limit") in decisions(n)
    assert whatsapp_to(emulator, t, B) == []
    k = await read(client, t, known)
    assert k["channel"] == "whatsapp" and tier_steps(k) == ["already_open"], k
    assert await count(t) == 1


async def wait_for_step(client, t, nid: str, result: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        n = await read(client, t, nid)
        if result in tier_steps(n):
            return n
        assert time.monotonic() < deadline, n
        await asyncio.sleep(0.05)


async def test_the_hold_policy_waits_for_capacity_then_sends(client, emulator, gateway, monkeypatch):
    monkeypatch.setattr(tiers, "HOLD_RECHECK_SECONDS", 0.2)
    t = await wired_tenant(client, emulator, gateway)
    await put_limits(client, t, at_cap="hold", hold_seconds=3600)
    await send_to(client, t, A)
    await settle(emulator)
    await assume_tier(t, 1)

    held = await send_to(client, t, B)
    n = await wait_for_step(client, t, held, "held")
    assert n["status"] == "queued" and whatsapp_to(emulator, t, B) == [], n
    # A's conversation turns 24 h old: capacity returns.
    async with session_factory()() as s:
        await s.execute(update(WhatsAppConversation).values(opened_at=utcnow() - timedelta(hours=25)))
        await s.commit()
    await wait_for_step(client, t, held, "opens")
    await settle(emulator)
    n = await read(client, t, held)
    assert n["channel"] == "whatsapp" and n["status"] in ("delivered", "read"), n
    assert tier_steps(n) == ["held", "opens"]  # the hold is recorded once, however often it looked
    assert len(whatsapp_to(emulator, t, B)) == 1


async def test_a_hold_past_its_deadline_falls_back_to_email(client, emulator, gateway, monkeypatch):
    monkeypatch.setattr(tiers, "HOLD_RECHECK_SECONDS", 0.2)
    t = await wired_tenant(client, emulator, gateway)
    await put_limits(client, t, at_cap="hold", hold_seconds=1)
    await send_to(client, t, A)
    await settle(emulator)
    await assume_tier(t, 1)

    held = await send_to(client, t, B)
    await wait_for_step(client, t, held, "hold_expired")
    await settle(emulator)
    n = await read(client, t, held)
    assert n["channel"] == "email" and tier_steps(n) == ["held", "hold_expired"], n
    assert ("fallback", "email", "messaging_limit") in decisions(n)
    assert whatsapp_to(emulator, t, B) == []


async def test_63018_at_the_emulators_tier_lowers_the_tier_and_alerts(
    client, emulator, gateway, callback_sink, monkeypatch
):
    monkeypatch.setattr(urls, "EXTRA_TRUSTED_HOSTS", {callback_sink.base_url.removeprefix("http://")})
    t = await wired_tenant(client, emulator, gateway)
    tenant = t.id
    await create_endpoint(client, t.admin, url=callback_sink.url("/hooks"), events=["whatsapp.sender_capped"])
    emulator.set_limits(t.account["account_sid"], tier=2)  # Meta allows this sender 2 people a day
    tier_before = await metric(client, "notifygw_whatsapp_63018_total", tenant=tenant, cause="tier")
    for phone in (A, B):
        await send_to(client, t, phone)
        await settle(emulator)
    third = await send_to(client, t, C)
    await settle(emulator)

    n = await read(client, t, third)
    wa, email = n["attempts"][0], n["attempts"][-1]
    assert (wa["status"], wa["error_code"]) == ("undelivered", "63018"), n
    assert n["channel"] == "email" and email["channel"] == "email", n
    assert tier_steps(n) == ["opens", "capped", "at_cap"], n
    async with session_factory()() as s:
        (limit,) = (await s.scalars(select(WhatsAppSenderLimit))).all()
    assert (limit.sender, limit.configured_tier, limit.assumed_tier) == (t.account["whatsapp_from"], 250, 2)
    assert await count(t) == 2  # C was not reached: not in the set
    assert await metric(client, "notifygw_whatsapp_63018_total", tenant=tenant, cause="tier") == tier_before + 1
    assert await metric(client, "notifygw_whatsapp_senders_capped_total", tenant=tenant) >= 1
    (event,) = callback_sink.wait_for(1, path="/hooks")
    body = event.json()
    assert body["type"] == "whatsapp.sender_capped"
    assert body["data"]["sender"] == t.account["whatsapp_from"]
    assert (body["data"]["assumed_tier"], body["data"]["configured_tier"], body["data"]["distinct_24h"]) == (2, 250, 2)

    # The next new person is stopped before Twilio is asked.
    fourth = await send_to(client, t, D)
    await settle(emulator)
    n = await read(client, t, fourth)
    assert n["channel"] == "email" and tier_steps(n) == ["at_cap"], n
    assert whatsapp_to(emulator, t, D) == []


async def test_a_burst_63018_is_sent_again_and_not_taken_for_the_tier(client, emulator, gateway):
    # Paced at one send per 2 s by us while the emulated sender takes one per 5 s: the second send is a
    # burst. Slow rates, so that a loaded machine's delays (seconds) cannot space the sends apart enough
    # to look like anything else on either side.
    t = await wired_tenant(client, emulator, gateway, rate=0.5)
    emulator.set_limits(t.account["account_sid"], mps=0.2)
    burst_before = await metric(client, "notifygw_whatsapp_63018_total", tenant=t.id, cause="burst")
    ids = [await send_to(client, t, A), await send_to(client, t, B)]
    await settle(emulator)

    results = [await read(client, t, nid) for nid in ids]
    assert all(n["channel"] == "whatsapp" and n["status"] in ("delivered", "read") for n in results), results
    retried = [n for n in results if "burst" in tier_steps(n)]
    assert retried, results
    attempts = retried[0]["attempts"]
    # The retry is paced too (2 s apart): one more may still land inside the emulated sender's 5 s.
    assert [a["error_code"] for a in attempts if a["status"] == "undelivered"] in (["63018"], ["63018", "63018"])
    assert attempts[-1]["status"] in ("delivered", "read")
    assert all("capped" not in tier_steps(n) for n in results)
    async with session_factory()() as s:
        assert (await s.scalars(select(WhatsAppSenderLimit))).all() == []
    assert await count(t) == 2
    assert await metric(client, "notifygw_whatsapp_63018_total", tenant=t.id, cause="burst") >= burst_before + 1


@pytest.mark.parametrize(
    "limits, pointer",
    [
        ({"tiers": {"whatsapp:+14155550100": 500}}, "/whatsapp/limits/tiers/*"),
        ({"tiers": {"+14155550100": 1000}}, "/whatsapp/limits/tiers"),  # not a sender: no whatsapp: prefix
        ({"default_tier": 0}, "/whatsapp/limits/default_tier"),
        ({"at_cap": "queue"}, "/whatsapp/limits/at_cap"),
        ({"hold_seconds": -1}, "/whatsapp/limits/hold_seconds"),
        ({"hold_seconds": 86401}, "/whatsapp/limits/hold_seconds"),
        ({"tier": 250}, "/whatsapp/limits/tier"),
    ],
)
async def test_invalid_limits_are_a_422_with_a_pointer(client, emulator, gateway, limits, pointer):
    t = await wired_tenant(client, emulator, gateway)
    r = await client.put("/v1/routing", json={"whatsapp": {"limits": limits}}, headers=t.admin)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["pointer"] == pointer, r.json()


async def test_tiers_per_sender_are_stored_and_read_back(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    limits = {"default_tier": 1000, "tiers": {t.account["whatsapp_from"]: "unlimited"}, "at_cap": "hold"}
    await put_limits(client, t, **limits)
    got = (await client.get("/v1/routing", headers=t.admin)).json()["whatsapp"]["limits"]
    assert got == {**limits, "hold_seconds": 3600}
    nid = await send_to(client, t, A)
    await settle(emulator)
    (opens,) = [d for d in decisions(await read(client, t, nid)) if d[0] == "tier"]
    assert opens[1] == "opens" and "unlimited" in (opens[2] or "")


async def test_conversations_older_than_24_h_are_forgotten_by_the_maintenance_pass(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    for phone in (A, B):
        await send_to(client, t, phone)
    await settle(emulator)
    async with session_factory()() as s:
        await s.execute(
            update(WhatsAppConversation)
            .where(WhatsAppConversation.contact_id.in_(select(WhatsAppConversation.contact_id).limit(1)))
            .values(opened_at=utcnow() - timedelta(hours=25))
        )
        await s.commit()
    assert await count(t) == 1
    async with session_factory()() as s:
        assert await tiers.forget_expired(s) == 1
        await s.commit()
        assert len((await s.scalars(select(WhatsAppConversation))).all()) == 1
