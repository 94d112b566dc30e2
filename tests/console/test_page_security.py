"""The console's new pages (routing, contacts, providers, webhooks, messages, usage, dashboard) without a
browser: another tenant's ids are 404, a changing form without its CSRF token changes nothing, and
people's text is shown escaped."""

from __future__ import annotations

import re
from typing import Any

from tests.console.test_session import _csrf, _sign_in
from tests.factories import bearer, make_key, make_tenant
from tests.support.gateway import settle, wired_tenant

SCRIPT = "<script>window.pwned=1</script>"


async def _other_tenants_ids(client: Any, sink: Any) -> dict[str, str]:
    """Tenant B's contact, suppression, webhook endpoint and delivery ids."""
    b = await make_tenant(client)
    key = bearer(await make_key(client, b["id"]))
    r = await client.post(
        "/v1/suppressions", json={"email": "ben@example.com", "channel": "email", "reason": "asked"}, headers=key
    )
    assert r.status_code == 201, r.text
    suppression = r.json()
    r = await client.post(
        "/v1/webhook-endpoints", json={"url": f"{sink.base_url}/hook", "events": ["contact.opted_out"]}, headers=key
    )
    assert r.status_code == 201, r.text
    return {"contact": suppression["contact_id"], "suppression": suppression["id"], "endpoint": r.json()["id"]}


async def test_another_tenants_ids_are_404_on_every_new_page(client: Any, sink: Any) -> None:
    theirs = await _other_tenants_ids(client, sink)
    a = await make_tenant(client)
    assert (await _sign_in(client, await make_key(client, a["id"], ["admin"]))).status_code == 303
    csrf = _csrf((await client.get("/console/contacts")).text)
    reads = [
        f"/console/contacts/{theirs['contact']}",
        f"/console/contacts/{theirs['contact']}/erase",
        f"/console/webhooks/{theirs['endpoint']}",
        f"/console/messages?contact={theirs['contact']}",  # a filter by their contact: nothing, not an error
    ]
    for path in reads[:3]:
        assert (await client.get(path)).status_code == 404, path
    assert (await client.get(reads[3])).status_code == 200
    writes = [
        (f"/console/contacts/{theirs['contact']}/erase", {"confirm": "erase"}),
        (f"/console/suppressions/{theirs['suppression']}/lift", {}),
        ("/console/consents", {"contact": theirs["contact"], "channel": "email", "status": "granted", "source": "x"}),
        ("/console/suppressions", {"contact": theirs["contact"], "channel": "email", "reason": "x"}),
        (f"/console/webhooks/{theirs['endpoint']}/rotate-secret", {}),
        (f"/console/webhooks/{theirs['endpoint']}/status", {"status": "disabled"}),
        (f"/console/webhooks/{theirs['endpoint']}/remove", {}),
        (f"/console/webhooks/{theirs['endpoint']}/deliveries/{theirs['suppression']}/resend", {}),
        ("/console/providers/nope", {}),
    ]
    for path, data in writes:
        r = await client.post(path, data={**data, "csrf": csrf}, follow_redirects=False)
        assert r.status_code == 404, (path, r.status_code)
    # Nothing of theirs changed: still suppressed, still enabled, never erased.
    b_view = await client.get(f"/console/webhooks/{theirs['endpoint']}")
    assert b_view.status_code == 404


async def test_a_post_without_its_csrf_token_changes_nothing(client: Any, sink: Any) -> None:
    a = await make_tenant(client)
    key = await make_key(client, a["id"], ["admin"])
    admin = bearer(key)
    r = await client.post(
        "/v1/suppressions", json={"email": "ava@example.com", "channel": "email", "reason": "asked"}, headers=admin
    )
    contact, suppression = r.json()["contact_id"], r.json()["id"]
    r = await client.post(
        "/v1/webhook-endpoints", json={"url": f"{sink.base_url}/hook", "events": ["contact.opted_out"]}, headers=admin
    )
    endpoint = r.json()["id"]
    assert (await _sign_in(client, key)).status_code == 303
    posts = [
        ("/console/routing", {"default_country": "DE", "sender_rate_per_second": "5"}),
        ("/console/consents", {"email": "x@example.com", "channel": "email", "status": "granted", "source": "x"}),
        ("/console/suppressions", {"email": "y@example.com", "channel": "email", "reason": "x"}),
        (f"/console/suppressions/{suppression}/lift", {}),
        (f"/console/contacts/{contact}/erase", {"confirm": "erase"}),
        ("/console/providers/sendgrid", {"api_key": "SG.aaaaaaaaaa.bbbbbbbbbb", "from_email": "a@example.com"}),
        ("/console/providers/twilio/remove", {}),
        ("/console/webhooks", {"url": f"{sink.base_url}/other", "events": "contact.opted_in"}),
        (f"/console/webhooks/{endpoint}/rotate-secret", {}),
        (f"/console/webhooks/{endpoint}/status", {"status": "disabled"}),
        (f"/console/webhooks/{endpoint}/remove", {}),
        ("/console/settings/retention", {"body_days": "7"}),
        ("/console/settings/sync", {}),
    ]
    for path, data in posts:
        for token in ({}, {"csrf": "forged"}):
            r = await client.post(path, data={**data, **token}, follow_redirects=False)
            assert r.status_code == 403, (path, r.status_code)
    assert (await client.get("/v1/routing", headers=admin)).json()["default_country"] == "US"
    assert len((await client.get("/v1/suppressions", headers=admin)).json()["items"]) == 1
    person = (await client.get(f"/v1/contacts/{contact}", headers=admin)).json()
    assert person["erased_at"] is None
    hooks = (await client.get("/v1/webhook-endpoints", headers=admin)).json()["items"]
    assert [h["status"] for h in hooks] == ["enabled"]
    audit = (await client.get("/v1/audit-log", headers=admin)).json()["items"]
    assert not [e for e in audit if e["action"] in ("routing.updated", "webhook_endpoint.secret_rotated")]
    assert (await client.get("/v1/settings/retention", headers=admin)).json()["body_days"] == 30


async def test_peoples_text_is_shown_escaped(client: Any, emulator: Any, gateway: str, worker: Any) -> None:
    t = await wired_tenant(client, emulator, gateway)
    emulator.inbound(t.account["account_sid"], from_="+14155550123", body=f"hi {SCRIPT}", profile_name=SCRIPT)
    await settle(emulator)
    assert (await _sign_in(client, t.admin["Authorization"].removeprefix("Bearer "))).status_code == 303
    escaped = "&lt;script&gt;window.pwned=1&lt;/script&gt;"
    messages = await client.get("/console/messages")
    assert messages.status_code == 200 and SCRIPT not in messages.text and f"hi {escaped}" in messages.text
    contact = re.search(r'href="/console/contacts/([0-9a-f-]{36})"', messages.text).group(1)
    for page in (await client.get("/console/contacts"), await client.get(f"/console/contacts/{contact}")):
        assert page.status_code == 200 and SCRIPT not in page.text and escaped in page.text


async def test_a_test_key_reads_configuration_but_changes_nothing_live(client: Any) -> None:
    a = await make_tenant(client)
    live = bearer(await make_key(client, a["id"], ["admin"]))
    assert (await _sign_in(client, await make_key(client, a["id"], ["admin"], environment="test"))).status_code == 303
    for path in (
        "/console/routing",
        "/console/providers",
        "/console/webhooks",
        "/console/usage",
        "/console/dashboard",
        "/console/settings",
    ):
        assert (await client.get(path)).status_code == 200, path
    for path in ("/console/contacts", "/console/audit-log"):  # live personal data and the live trail, as on the API
        assert (await client.get(path)).status_code == 403, path
    messages = await client.get("/console/messages")
    assert messages.status_code == 200 and 'id="test-key"' in messages.text
    csrf = _csrf((await client.get("/console/routing")).text)
    posts = [
        ("/console/routing", {"default_country": "DE", "sender_rate_per_second": "5"}),
        ("/console/consents", {"email": "x@example.com", "channel": "email", "status": "granted", "source": "x"}),
        ("/console/suppressions", {"email": "y@example.com", "channel": "email", "reason": "x"}),
        ("/console/providers/twilio/remove", {}),
        ("/console/webhooks", {"url": "https://example.com/hook", "events": "contact.opted_in"}),
        ("/console/templates", {"key": "t", "body": "{}"}),
        ("/console/settings/retention", {"body_days": "7"}),
        ("/console/settings/sync", {}),
    ]
    for path, data in posts:
        r = await client.post(path, data={**data, "csrf": csrf}, follow_redirects=False)
        assert r.status_code == 403 and "test keys cannot change live configuration" in r.text, path
    assert (await client.get("/v1/routing", headers=live)).json()["default_country"] == "US"
    assert (await client.get("/v1/suppressions", headers=live)).json()["items"] == []


async def test_a_form_with_no_box_ticked_is_a_422_or_saved_never_a_500(client: Any, sink: Any) -> None:
    a = await make_tenant(client)
    key = await make_key(client, a["id"], ["admin"])
    assert (await _sign_in(client, key)).status_code == 303
    csrf = _csrf((await client.get("/console/routing")).text)
    # No fallback reason ticked: a valid policy (never fall back to email).
    r = await client.post(
        "/console/routing",
        data={"csrf": csrf, "default_country": "US", "sender_rate_per_second": "80"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    policy = (await client.get("/v1/routing", headers=bearer(key))).json()
    assert policy["fallback"]["email_on"] == [] and policy["require_whatsapp_opt_in"] is False
    # No event ticked: the API's own 422 (at least one event), beside the field.
    r = await client.post("/console/webhooks", data={"csrf": csrf, "url": sink.url("/hook")})
    assert r.status_code == 422 and 'id="error-events"' in r.text
    # No scope ticked for a new API key: refused with its reason.
    r = await client.post("/console/api-keys", data={"csrf": csrf, "name": "nothing"})
    assert r.status_code == 422 and "needs a name and a scope" in r.text


async def test_saving_routing_keeps_what_the_form_has_no_field_for(client: Any) -> None:
    """Consent ages, country rules and messaging-limit tiers are set through the API only: a save from the
    console's routing form must not reset them to their defaults."""
    a = await make_tenant(client)
    key = await make_key(client, a["id"], ["admin"])
    policy = {
        "consent_max_age_days": {"default": 730, "MARKETING": 365},
        "countries": [{"country": "IR", "blocked": True}],
        "whatsapp": {"limits": {"default_tier": 1000, "at_cap": "hold"}},
    }
    r = await client.put("/v1/routing", json=policy, headers=bearer(key))
    assert r.status_code == 200, r.text
    assert (await _sign_in(client, key)).status_code == 303
    csrf = _csrf((await client.get("/console/routing")).text)
    form = {"csrf": csrf, "default_country": "GB", "sender_rate_per_second": "40", "email_on": "failed"}
    r = await client.post("/console/routing", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    stored = (await client.get("/v1/routing", headers=bearer(key))).json()
    assert stored["default_country"] == "GB" and stored["whatsapp"]["sender_rate_per_second"] == 40
    ages = stored["consent_max_age_days"]
    assert ages["default"] == 730 and ages["MARKETING"] == 365
    assert [c["country"] for c in stored["countries"]] == ["IR"] and stored["countries"][0]["blocked"] is True
    assert stored["whatsapp"]["limits"]["default_tier"] == 1000 and stored["whatsapp"]["limits"]["at_cap"] == "hold"
