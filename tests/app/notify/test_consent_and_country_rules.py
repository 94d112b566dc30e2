"""Consent freshness and country rules (issue 14 §3), end to end: gateway, Dramatiq worker on Redis, emulator.

Each check is a decision step (docs/routing.md): `country`, `consent`, `consent_age`, `quiet_hours`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.core.db import session_factory, utcnow
from app.core.queue import get_broker
from app.notify import pipeline
from app.notify.service import ROUTE
from app.outbox import service as outbox
from app.outbox.models import OutboxItem
from tests.support.gateway import WiredTenant, notify, read, settle, wired_tenant

pytestmark = pytest.mark.usefixtures("worker")

PHONE = "+14155550123"  # San Francisco: America/Los_Angeles, phonenumbers' one zone for it


def decisions(n: dict) -> list[tuple[str, str, str | None]]:
    return [(d["step"], d["result"], d["detail"]) for d in n["decisions"]]


def step(n: dict, name: str) -> tuple[str, str | None] | None:
    found = [(d[1], d[2]) for d in decisions(n) if d[0] == name]
    assert len(found) <= 1, found
    return found[0] if found else None


def whatsapp_sent(emulator: Any, t: WiredTenant) -> list[dict]:
    return [m for m in emulator.messages(account_sid=t.account["account_sid"]) if m["direction"].startswith("outbound")]


async def put_policy(client: Any, t: WiredTenant, **policy: Any) -> None:
    policy.setdefault("whatsapp", {"sender_rate_per_second": 1000.0})
    r = await client.put("/v1/routing", json=policy, headers=t.admin)
    assert r.status_code == 200, r.text


async def grant(client: Any, t: WiredTenant, days_ago: float) -> None:
    captured = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    r = await client.post(
        "/v1/consents",
        headers=t.admin,
        json={"phone": PHONE, "channel": "whatsapp", "status": "granted", "source": "form", "captured_at": captured},
    )
    assert r.status_code == 201, r.text


async def set_category(client: Any, emulator: Any, t: WiredTenant, category: str) -> None:
    emulator.review_template(t.content_sid, category=category)
    assert (await client.post("/v1/templates/sync", headers=t.admin)).status_code == 200


async def routed(client: Any, emulator: Any, t: WiredTenant, **body: Any) -> dict:
    nid = await notify(client, t, **body)
    await settle(emulator)
    return await read(client, t, nid)


# --- consent freshness ------------------------------------------------------------------------------


async def test_a_stale_consent_is_no_consent_for_a_template_outside_the_window(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    await put_policy(client, t, require_whatsapp_opt_in=True, consent_max_age_days={"default": 365})
    await grant(client, t, days_ago=400)
    n = await routed(client, emulator, t)
    assert step(n, "consent")[0] == "granted"
    result, detail = step(n, "consent_age")
    assert result == "stale" and "400 days ago" in detail and "365 days" in detail, detail
    assert ("fallback", "email", "no_consent") in decisions(n)
    assert n["channel"] == "email" and n["status"] == "delivered", n
    assert whatsapp_sent(emulator, t) == []


async def test_a_fresh_consent_lets_the_template_go(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    await put_policy(client, t, require_whatsapp_opt_in=True, consent_max_age_days={"default": 365})
    await grant(client, t, days_ago=30)
    n = await routed(client, emulator, t)
    assert step(n, "consent_age")[0] == "fresh" and n["channel"] == "whatsapp" and n["status"] == "read", n
    assert len(whatsapp_sent(emulator, t)) == 1


async def test_the_age_limit_follows_the_templates_category(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)  # the emulator's templates are UTILITY
    await put_policy(client, t, require_whatsapp_opt_in=True, consent_max_age_days={"default": 730, "MARKETING": 90})
    await grant(client, t, days_ago=120)
    utility = await routed(client, emulator, t)
    result, detail = step(utility, "consent_age")
    assert result == "fresh" and "default limit (UTILITY) is 730 days" in detail and utility["channel"] == "whatsapp"
    await set_category(client, emulator, t, "MARKETING")
    marketing = await routed(client, emulator, t)
    result, detail = step(marketing, "consent_age")
    assert result == "stale" and "MARKETING limit is 90 days" in detail, detail
    assert marketing["channel"] == "email" and len(whatsapp_sent(emulator, t)) == 1


async def test_inside_the_window_the_consents_age_is_not_judged(client, emulator, gateway):
    """Only a business-initiated send (a template outside the 24 h window) needs a fresh consent."""
    t = await wired_tenant(client, emulator, gateway)
    await put_policy(client, t, require_whatsapp_opt_in=True, consent_max_age_days={"default": 30})
    await grant(client, t, days_ago=400)
    emulator.inbound(t.account["account_sid"], from_=PHONE, body="hello")
    await settle(emulator)
    n = await routed(client, emulator, t)
    assert step(n, "window")[0] == "open" and step(n, "consent_age") is None
    assert n["channel"] == "whatsapp", n


# --- country rules ----------------------------------------------------------------------------------


async def test_a_blocked_country_gets_no_whatsapp_and_falls_back(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    await put_policy(client, t, require_whatsapp_opt_in=False, countries=[{"country": "US", "blocked": True}])
    n = await routed(client, emulator, t)
    assert step(n, "country") == ("blocked", "WhatsApp to US is blocked by the routing policy")
    assert ("fallback", "email", "country_blocked") in decisions(n) and step(n, "consent") is None
    assert n["channel"] == "email" and n["status"] == "delivered", n
    assert whatsapp_sent(emulator, t) == []
    # Another country's number is not blocked.
    other = await routed(client, emulator, t, to={"phone": "+4915112345678", "email": "ava@example.com"})
    assert step(other, "country") == ("no_rule", "DE") and other["channel"] == "whatsapp", other


async def test_a_policy_that_does_not_list_country_blocked_falls_back_as_failed(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    await put_policy(
        client,
        t,
        require_whatsapp_opt_in=False,
        countries=[{"country": "US", "blocked": True}],
        fallback={"email_on": ["window_closed", "failed"]},  # as stored before the reason existed
    )
    n = await routed(client, emulator, t)
    assert ("fallback", "email", "failed") in decisions(n) and n["channel"] == "email", n


async def test_a_country_can_require_opt_in_where_the_tenant_does_not(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    await put_policy(
        client, t, require_whatsapp_opt_in=False, countries=[{"country": "US", "require_whatsapp_opt_in": True}]
    )
    n = await routed(client, emulator, t)
    assert step(n, "country") == ("rule", "US; opt-in required")
    assert step(n, "consent") == ("missing", "the US rule sets require_whatsapp_opt_in")
    assert ("fallback", "email", "no_consent") in decisions(n) and n["channel"] == "email"
    # A German number has no rule: the tenant's default (no opt-in) applies.
    de = await routed(client, emulator, t, to={"phone": "+4915112345678", "email": "ava@example.com"})
    assert step(de, "consent") == ("not_required", None) and de["channel"] == "whatsapp", de


async def test_a_country_can_waive_the_tenants_opt_in(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    await put_policy(
        client, t, require_whatsapp_opt_in=True, countries=[{"country": "US", "require_whatsapp_opt_in": False}]
    )
    n = await routed(client, emulator, t)
    assert step(n, "consent") == ("not_required", "the US rule sets require_whatsapp_opt_in")
    assert n["channel"] == "whatsapp", n


# --- quiet hours ------------------------------------------------------------------------------------

# 21:00 on 1 December in San Francisco (UTC-8), inside quiet hours of 20:00 to 08:00; they end at 16:00 UTC.
EVENING = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
MORNING = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
QUIET = [{"country": "US", "quiet_hours": {"start": "20:00", "end": "08:00"}}]


async def wait_for_step(client: Any, t: WiredTenant, nid: str, name: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        n = await read(client, t, nid)
        if step(n, name) is not None:
            return n
        assert time.monotonic() < deadline, f"no {name} decision: {n}"
        await asyncio.sleep(0.05)


async def test_a_marketing_template_waits_for_the_end_of_quiet_hours(client, emulator, gateway, monkeypatch):
    t = await wired_tenant(client, emulator, gateway)
    await put_policy(client, t, require_whatsapp_opt_in=False, countries=QUIET)
    await set_category(client, emulator, t, "MARKETING")
    monkeypatch.setattr(pipeline, "policy_clock", lambda: EVENING)
    nid = await notify(client, t)
    n = await wait_for_step(client, t, nid, "quiet_hours")
    assert step(n, "quiet_hours") == (
        "held",
        "until 2026-12-02T16:00:00Z; quiet 20:00-08:00 in America/Los_Angeles",
    )
    assert n["status"] == "accepted" and n["attempts"] == [] and step(n, "send") is None, n
    async with session_factory()() as s:
        (row,) = (await s.scalars(select(OutboxItem).where(OutboxItem.ref_id == uuid.UUID(nid)))).all()
    assert row.kind == ROUTE and row.state == "pending", row  # not done: the job comes back at 16:00 UTC
    assert row.available_at > utcnow() + timedelta(hours=10)  # 11 h after 05:00 on the fixed clock
    assert whatsapp_sent(emulator, t) == []

    # 16:00 UTC: the job comes back (here sent by hand, its delayed message dropped) and the template goes.
    get_broker().flush_all()
    monkeypatch.setattr(pipeline, "policy_clock", lambda: MORNING)
    async with session_factory()() as s:
        await outbox.enqueue(s, uuid.UUID(t.id), ROUTE, uuid.UUID(nid))
        await s.commit()
    await settle(emulator)
    n = await read(client, t, nid)
    held, clear = [d for d in decisions(n) if d[0] == "quiet_hours"]
    assert held[1] == "held" and clear[:2] == ("quiet_hours", "clear") and clear[2].startswith("08:00 ")
    assert n["channel"] == "whatsapp" and n["status"] == "read", n
    assert len(whatsapp_sent(emulator, t)) == 1


async def test_quiet_hours_hold_marketing_templates_only(client, emulator, gateway, monkeypatch):
    t = await wired_tenant(client, emulator, gateway)  # UTILITY
    await put_policy(client, t, require_whatsapp_opt_in=False, countries=QUIET)
    monkeypatch.setattr(pipeline, "policy_clock", lambda: EVENING)
    n = await routed(client, emulator, t)
    assert step(n, "quiet_hours") is None and n["channel"] == "whatsapp", n
    # A German number's evening is not San Francisco's: the rule is the US's.
    await set_category(client, emulator, t, "MARKETING")
    de = await routed(client, emulator, t, to={"phone": "+4915112345678", "email": "ava@example.com"})
    assert step(de, "quiet_hours") is None and de["channel"] == "whatsapp", de
