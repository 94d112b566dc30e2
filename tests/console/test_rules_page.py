"""The console's Rules page (consent ages, country rules, messaging-limit tiers): the API's JSON pointers become
its form fields, a save goes through put_policy like PUT /v1/routing and keeps the Routing page's fields, a
form without its CSRF token changes nothing, and in headless Chromium: sign in, set the rules, see them
saved and each sender's tier and 24 h count, see an error beside its field, sign out."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from app.console.common import field_errors
from app.console.rules import field_for
from app.core.db import session_factory, utcnow
from app.notify.models import WhatsAppConversation, WhatsAppSenderLimit
from tenants.routing.schemas import RoutingPolicyDoc
from tests.console.browser import browser_page, shot, sign_in, sign_out
from tests.console.test_pages import pytestmark as needs_chromium
from tests.console.test_session import _csrf, _sign_in
from tests.factories import bearer, make_key, make_tenant

SENDER = "whatsapp:+14155238886"
MG = "MG" + "cd" * 16


@pytest.mark.parametrize(
    ("doc", "rows", "field"),
    [
        ({"consent_max_age_days": {"MARKETING": 0}}, [], "consent_MARKETING"),
        ({"consent_max_age_days": {"default": 40000}}, [], "consent_default"),
        (
            {"countries": [{"country": "DE"}, {"country": "FR", "quiet_hours": {"start": "25:00", "end": "08:00"}}]},
            [0, 3],
            "quiet_start_3",
        ),
        ({"countries": [{"country": "FR", "quiet_hours": {"start": "21:00"}}]}, [2], "quiet_end_2"),
        ({"countries": [{"country": "fr"}]}, [1], "country_1"),
        ({"countries": [{"country": "FR", "require_whatsapp_opt_in": "x"}]}, [0], "opt_in_0"),
        ({"whatsapp": {"limits": {"tiers": {SENDER: 300}}}}, [], "tiers"),
        ({"whatsapp": {"limits": {"tiers": {"+14155238886": 250}}}}, [], "tiers"),
        ({"whatsapp": {"limits": {"default_tier": 500}}}, [], "default_tier"),
        ({"whatsapp": {"limits": {"at_cap": "wait"}}}, [], "at_cap"),
        ({"whatsapp": {"limits": {"hold_seconds": 90000}}}, [], "hold_seconds"),
        ({"whatsapp": {"sender_rate_per_second": 0}}, [], ""),  # the Routing page's field, not this one's
    ],
)
def test_the_apis_pointers_become_the_rules_fields(doc: dict, rows: list[int], field: str) -> None:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert(doc, RoutingPolicyDoc)
    ((pointer, _),) = field_errors(caught.value).items()
    assert field_for(pointer, rows) == field, pointer


async def test_a_post_without_its_csrf_token_changes_nothing(client: Any) -> None:
    a = await make_tenant(client)
    key = await make_key(client, a["id"], ["admin"])
    assert (await _sign_in(client, key)).status_code == 303
    assert (await client.get("/console/rules")).status_code == 200
    form = {
        "consent_MARKETING": "30",
        "country_0": "IR",
        "blocked_0": "on",
        "default_tier": "1000",
        "at_cap": "hold",
        "hold_seconds": "60",
    }
    for token in ({}, {"csrf": "forged"}):
        r = await client.post("/console/rules", data={**form, **token}, follow_redirects=False)
        assert r.status_code == 403
    policy = (await client.get("/v1/routing", headers=bearer(key))).json()
    assert policy["consent_max_age_days"]["MARKETING"] is None and policy["countries"] == []
    assert policy["whatsapp"]["limits"]["default_tier"] == 250 and policy["whatsapp"]["limits"]["at_cap"] == "email"
    audit = (await client.get("/v1/audit-log", headers=bearer(key))).json()["items"]
    assert not [e for e in audit if e["action"] == "routing.updated"]


async def test_a_test_key_reads_the_rules_but_changes_nothing(client: Any) -> None:
    a = await make_tenant(client)
    assert (await _sign_in(client, await make_key(client, a["id"], ["admin"], environment="test"))).status_code == 303
    page = await client.get("/console/rules")
    assert page.status_code == 200
    r = await client.post(
        "/console/rules", data={"csrf": _csrf(page.text), "country_0": "IR", "blocked_0": "on", "at_cap": "email"}
    )
    assert r.status_code == 403 and "test keys cannot change live configuration" in r.text


async def test_every_error_beside_its_field_and_a_save_keeps_the_routing_pages_fields(client: Any) -> None:
    a = await make_tenant(client)
    key = await make_key(client, a["id"], ["admin"])
    routing = {"default_country": "GB", "whatsapp": {"sender_rate_per_second": 12}, "countries": [{"country": "BR"}]}
    assert (await client.put("/v1/routing", json=routing, headers=bearer(key))).status_code == 200
    assert (await _sign_in(client, key)).status_code == 303
    csrf = _csrf((await client.get("/console/rules")).text)
    bad = {
        "csrf": csrf,
        "consent_MARKETING": "0",
        "consent_UTILITY": "soon",
        "country_0": "BR",
        "country_1": "DE",
        "quiet_start_1": "25:00",
        "quiet_end_1": "8",
        "country_2": "BR",  # twice: the policy rules' own check, found in the same pass
        "default_tier": "250",
        "tiers": f"{SENDER}=300\n{MG}=unlimited",
        "at_cap": "email",
        "hold_seconds": "-1",
    }
    r = await client.post("/console/rules", data=bad)
    assert r.status_code == 422
    errors = {k: html.unescape(v) for k, v in re.findall(r'id="error-([a-z_A-Z0-9]+)" role="alert">([^<]*)<', r.text)}
    assert set(errors) == {
        "consent_MARKETING",
        "consent_UTILITY",
        "quiet_start_1",
        "quiet_end_1",
        "country_2",
        "tiers",
        "hold_seconds",
    }, errors
    assert ">= 1" in errors["consent_MARKETING"] and "has a rule already" in errors["country_2"]
    assert errors["tiers"].startswith(f"{SENDER}=300: ")
    assert 'value="25:00"' in r.text  # what was typed stays
    stored = (await client.get("/v1/routing", headers=bearer(key))).json()
    assert stored["countries"] == [
        {"country": "BR", "require_whatsapp_opt_in": None, "blocked": False, "quiet_hours": None}
    ]
    good = {
        **bad,
        "consent_MARKETING": "365",
        "consent_UTILITY": "",
        "quiet_start_1": "21:00",
        "quiet_end_1": "08:00",
        "opt_in_1": "required",
        "country_2": "IR",
        "blocked_2": "on",
        "remove_0": "on",
        "tiers": f"{SENDER}=1000\n{MG}=unlimited",
        "hold_seconds": "600",
    }
    r = await client.post("/console/rules", data=good, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/rules?saved=1"
    stored = (await client.get("/v1/routing", headers=bearer(key))).json()
    assert stored["default_country"] == "GB" and stored["whatsapp"]["sender_rate_per_second"] == 12
    assert stored["consent_max_age_days"]["MARKETING"] == 365 and stored["consent_max_age_days"]["UTILITY"] is None
    assert stored["countries"] == [
        {
            "country": "DE",
            "require_whatsapp_opt_in": True,
            "blocked": False,
            "quiet_hours": {"start": "21:00", "end": "08:00"},
        },
        {"country": "IR", "require_whatsapp_opt_in": None, "blocked": True, "quiet_hours": None},
    ]
    assert stored["whatsapp"]["limits"] == {
        "default_tier": 250,
        "tiers": {SENDER: 1000, MG: "unlimited"},
        "at_cap": "email",
        "hold_seconds": 600,
    }
    audit = (await client.get("/v1/audit-log", headers=bearer(key))).json()["items"]
    assert [e for e in audit if e["action"] == "routing.updated"]


async def _conversations(client: Any, key: str, tenant_id: str, sender: str, people: int) -> None:
    """`people` distinct contacts in `sender`'s 24 h set, and a 63018 that lowered its tier to 2 (policy 1000)."""
    contacts = []
    for i in range(people):
        r = await client.post(
            "/v1/consents",
            json={"phone": f"+1415555{i:04d}", "channel": "whatsapp", "status": "granted", "source": "test"},
            headers=bearer(key),
        )
        assert r.status_code == 201, r.text
        contacts.append(uuid.UUID(r.json()["contact_id"]))
    now, tenant = utcnow(), uuid.UUID(tenant_id)
    async with session_factory()() as s:
        for c in contacts:
            s.add(WhatsAppConversation(tenant_id=tenant, sender=sender, contact_id=c, opened_at=now))
        # one more, opened 25 h ago: out of the 24 h set
        s.add(
            WhatsAppConversation(
                tenant_id=tenant, sender=MG, contact_id=contacts[0], opened_at=now - timedelta(hours=25)
            )
        )
        s.add(
            WhatsAppSenderLimit(
                tenant_id=tenant, sender=sender, configured_tier=1000, assumed_tier=2, distinct_at_cap=2, capped_at=now
            )
        )
        await s.commit()


@needs_chromium
async def test_rules_set_saved_shown_and_refused_beside_the_field(client: Any, gateway: str, tmp_path: Path) -> None:
    tenant = await make_tenant(client)
    key = await make_key(client, tenant["id"], ["admin"])
    await _conversations(client, key, tenant["id"], SENDER, 3)
    async with browser_page(gateway, tmp_path) as page:
        await sign_in(page, key)
        await page.click("header nav a[href='/console/rules']")
        await page.wait_for_url("**/console/rules")
        assert await page.locator("#country-rules tr.rule").count() == 3  # three empty rows to fill in
        await page.fill("[name=consent_MARKETING]", "365")
        await page.fill("[name=country_0]", "de")
        await page.select_option("[name=opt_in_0]", "required")
        await page.fill("[name=quiet_start_0]", "21:00")
        await page.fill("[name=quiet_end_0]", "08:00")
        await page.fill("[name=country_1]", "IR")
        await page.check("[name=blocked_1]")
        await page.select_option("[name=default_tier]", "10000")
        await page.fill("[name=tiers]", f"{SENDER}=1000\n{MG}=unlimited")
        await page.select_option("[name=at_cap]", "hold")
        await page.fill("[name=hold_seconds]", "900")
        await page.click("#save")
        await page.wait_for_url("**/console/rules?saved=1")
        assert await page.locator("#saved").count() == 1
        # Saved, and shown back: the two rules, then empty rows for more.
        assert await page.input_value("[name=country_0]") == "DE"
        assert await page.input_value("[name=quiet_end_0]") == "08:00"
        assert await page.is_checked("[name=blocked_1]")
        assert await page.input_value("[name=country_2]") == ""
        assert await page.input_value("[name=default_tier]") == "10000"
        # Each sender's state: the 63018's lower tier (2) stands while the policy says 1000 for it; 3 people in 24 h.
        sender_row = page.locator("#senders tr.sender", has_text=SENDER)
        assert await sender_row.locator(".tier").text_content() == "2"
        assert await sender_row.locator(".count").text_content() == "3"
        mg_row = page.locator("#senders tr.sender", has_text=MG)
        assert await mg_row.locator(".tier").text_content() == "unlimited"
        assert await mg_row.locator(".count").text_content() == "0"
        await shot(page, "rules")
        # A bad value: the API's 422 beside its field (/countries/0/quiet_hours/start), the rest untouched.
        await page.fill("[name=quiet_start_0]", "25:00")
        await page.fill("[name=consent_MARKETING]", "0")
        await page.click("#save")
        start_error = page.locator("tr#row-0 td:has([name=quiet_start_0]) #error-quiet_start_0")
        assert await start_error.count() == 1
        assert "HH:MM" in (await start_error.text_content() or "") or "match" in (
            await start_error.text_content() or ""
        )
        assert await page.locator("label:has([name=consent_MARKETING]) #error-consent_MARKETING").count() == 1
        assert await page.input_value("[name=quiet_start_0]") == "25:00"  # what was typed stays
        assert await page.locator("#saved").count() == 0
        await sign_out(page)
    policy = (await client.get("/v1/routing", headers=bearer(key))).json()
    assert policy["consent_max_age_days"]["MARKETING"] == 365
    assert policy["countries"] == [
        {
            "country": "DE",
            "require_whatsapp_opt_in": True,
            "blocked": False,
            "quiet_hours": {"start": "21:00", "end": "08:00"},
        },
        {"country": "IR", "require_whatsapp_opt_in": None, "blocked": True, "quiet_hours": None},
    ]
    assert policy["whatsapp"]["limits"] == {
        "default_tier": 10000,
        "tiers": {SENDER: 1000, MG: "unlimited"},
        "at_cap": "hold",
        "hold_seconds": 900,
    }
