"""The console's routing, contacts, providers and webhook pages in headless Chromium against the
gateway as a real server: sign in, do the page's main task, see the result, sign out."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.console.browser import browser_page, shot, sign_in, sign_out
from tests.console.test_pages import _admin, pytestmark  # noqa: F401  (skip without Chromium, as there)
from tests.factories import bearer
from tests.support.gateway import settle, wired_tenant
from tests.tenants.test_templates_routing import ORDER_SHIPPED

MG = "MG" + "ab" * 16


def _key(t: Any) -> str:
    return str(t.admin["Authorization"].removeprefix("Bearer "))


async def _until(page: Any, check: Any, tries: int = 60) -> None:
    """Reload until `check(page)` holds (the workers finish in the background)."""
    for _ in range(tries):
        if await check(page):
            return
        await asyncio.sleep(0.25)
        await page.reload()
    assert await check(page)


async def test_routing_errors_beside_each_field_then_saved(client: Any, gateway: str, tmp_path: Path) -> None:
    _, key = await _admin(client)
    async with browser_page(gateway, tmp_path) as page:
        await sign_in(page, key)
        await page.goto("/console/routing")
        await page.fill("[name=default_country]", "usa")
        await page.fill("[name=sender_rate_per_second]", "0")
        await page.fill("[name=by_country]", "DE=not-a-service")
        await page.fill("[name=messaging_service_sid]", "MG123")
        await page.click("#save")
        # Every wrong field says so beside itself (the API's 422, mapped from its JSON pointer).
        for field in ("default_country", "sender_rate_per_second", "by_country", "messaging_service_sid"):
            assert await page.locator(f"label:has([name={field}]) #error-{field}").count() == 1, field
        assert ">= 0.1" in (await page.text_content("#error-sender_rate_per_second") or "")
        await shot(page, "routing-errors")
        assert await page.locator("#error-stop_words").count() == 0
        assert await page.input_value("[name=default_country]") == "usa"  # what was typed stays
        await page.fill("[name=default_country]", "de")
        await page.fill("[name=sender_rate_per_second]", "2.5")
        await page.fill("[name=by_country]", f"FR={MG}")
        await page.fill("[name=messaging_service_sid]", "")
        await page.uncheck("#email-on input[value=template_unapproved]")
        await page.uncheck("[name=require_whatsapp_opt_in]")
        await page.fill("[name=stop_words]", "halt, basta ya")
        await page.fill("[name=opt_out_confirmation]", "Bye <b>for now</b>")
        await page.click("#save")
        await page.wait_for_url("**/console/routing?saved=1")
        assert await page.locator("#saved").count() == 1
        assert await page.input_value("[name=opt_out_confirmation]") == "Bye <b>for now</b>"
        await sign_out(page)
    policy = (await client.get("/v1/routing", headers={"Authorization": f"Bearer {key}"})).json()
    assert policy["default_country"] == "DE" and policy["require_whatsapp_opt_in"] is False
    assert {k: v for k, v in policy["whatsapp"].items() if k != "limits"} == {
        "messaging_service_sid": None,
        "by_country": {"FR": MG},
        "sender_rate_per_second": 2.5,
    }
    assert (
        "template_unapproved" not in policy["fallback"]["email_on"]
        and "window_closed" in policy["fallback"]["email_on"]
    )
    assert policy["inbound"]["stop_words"] == ["halt", "basta ya"]
    assert policy["inbound"]["opt_out_confirmation"] == "Bye <b>for now</b>"


async def test_contacts_consent_suppression_search_and_erase(client: Any, gateway: str, tmp_path: Path) -> None:
    _, key = await _admin(client)
    admin = {"Authorization": f"Bearer {key}"}
    async with browser_page(gateway, tmp_path) as page:
        await sign_in(page, key)
        await page.goto("/console/contacts")
        await page.fill("#consent-form [name=phone]", "+14155550123")
        await page.fill("#consent-form [name=source]", "signup <b>form</b>")
        await page.click("#add-consent")
        await page.wait_for_url("**/console/contacts/*")
        contact_url = page.url
        assert "signup <b>form</b>" in (await page.text_content("#ledger") or "")
        assert "granted" in (await page.text_content("#ledger") or "")
        assert "+14155550123" in (await page.text_content("#identifiers") or "")
        # An email suppression needs an email address, which this person has not: the API's reason is shown.
        await page.select_option("#suppression-form [name=channel]", "email")
        await page.click("#add-suppression")
        assert "email" in (await page.text_content("#error") or "")
        await page.select_option("#suppression-form [name=channel]", "whatsapp")
        await page.click("#add-suppression")
        await page.wait_for_url(contact_url)
        assert "asked by the person" in (await page.text_content("#suppressions") or "")
        await shot(page, "contact")
        # Search by phone finds them; someone else finds no one.
        await page.goto("/console/contacts")
        await page.fill("#q", "+1 415 555 0123")
        await page.click("#search")
        await page.wait_for_url("**q=**")
        assert await page.locator("#contacts tbody tr a").count() == 1
        await page.fill("#q", "nobody@example.com")
        await page.click("#search")
        await page.wait_for_url("**nobody**")
        assert await page.locator("#contacts tbody tr a").count() == 0
        # Erasing asks first; a wrong confirmation erases nothing.
        await page.goto(contact_url)
        await page.click("#erase")
        await page.wait_for_url("**/erase")
        await page.fill("#confirm", "yes")
        await page.click("#erase-now")
        assert await page.locator("#error").count() == 1
        person = (await client.get(f"/v1/contacts/{contact_url.rsplit('/', 1)[1]}", headers=admin)).json()
        assert person["erased_at"] is None
        await page.fill("#confirm", "erase")
        await page.click("#erase-now")
        await page.wait_for_url(contact_url)
        assert await page.locator("#erased").count() == 1
        assert "+14155550123" not in (await page.text_content("#identifiers") or "")
        assert "asked by the person" in (await page.text_content("#suppressions") or "")  # suppressions stay
        await sign_out(page)
    person = (await client.get(f"/v1/contacts/{contact_url.rsplit('/', 1)[1]}", headers=admin)).json()
    assert person["erased_at"] is not None and person["suppression"]["whatsapp"]["suppressed"] is True


async def test_providers_masked_and_replaced(client: Any, emulator: Any, gateway: str, tmp_path: Path) -> None:
    t = await wired_tenant(client, emulator, gateway)
    secrets = (t.account["auth_token"], t.account["api_key_secret"], t.sendgrid["api_key"])
    async with browser_page(gateway, tmp_path) as page:
        await sign_in(page, _key(t))
        await page.goto("/console/providers")
        html = await page.content()
        assert not [s for s in secrets if s in html]  # never a secret, masked or not
        assert "valid" in (await page.text_content("#provider-twilio .state") or "")
        assert t.account["account_sid"] in html
        await shot(page, "providers")
        # A bad value is refused beside its field; the typed secret is not sent back.
        await page.fill("#twilio-form [name=account_sid]", "AC-nope")
        await page.fill("#twilio-form [name=auth_token]", "f" * 32)
        await page.click("#save-twilio")
        assert await page.locator("#error-twilio-account_sid").count() == 1
        assert "f" * 32 not in await page.content()
        assert await page.input_value("#sendgrid-form [name=from_email]") == "notify@example.com"  # not secret: kept
        assert await page.input_value("#sendgrid-form [name=api_key]") == ""
        # Replacing SendGrid's key: verified with the (emulated) provider, stored, shown masked.
        new = emulator.create_sendgrid_key(event_webhook_url=f"{gateway}/webhooks/sendgrid/{t.id}")
        await page.fill("#sendgrid-form [name=api_key]", new["api_key"])
        await page.fill("#sendgrid-form [name=from_email]", "hello@example.com")
        await page.fill("#sendgrid-form [name=from_name]", "Hello <team>")
        await page.fill("#sendgrid-form [name=event_webhook_public_key]", new["event_webhook_public_key"])
        await page.click("#save-sendgrid")
        await page.wait_for_url("**/console/providers")
        card = await page.text_content("#provider-sendgrid") or ""
        assert "hello@example.com" in card and "Hello <team>" in card
        assert new["api_key"] not in await page.content()
        await sign_out(page)
    stored = (await client.get("/v1/providers/sendgrid", headers=t.admin)).json()
    assert stored["from_email"] == "hello@example.com" and stored["api_key"].endswith(new["api_key"][-4:])


async def test_webhooks_deliveries_resend_rotate_disable(
    client: Any, emulator: Any, gateway: str, worker: Any, sink: Any, tmp_path: Path
) -> None:
    t = await wired_tenant(client, emulator, gateway)
    async with browser_page(gateway, tmp_path) as page:
        await sign_in(page, _key(t))
        await page.goto("/console/webhooks")
        await page.fill("#endpoint-form [name=url]", "https://169.254.169.254/latest")
        await page.check("#endpoint-form input[value='message.received']")
        await page.click("#add-endpoint")
        assert await page.locator("#error-url").count() == 1  # the SSRF guard, as on the API
        await page.fill("#endpoint-form [name=url]", sink.url("/hook"))
        await page.click("#add-endpoint")
        first_secret = (await page.text_content("#new-secret") or "").strip()
        assert first_secret.startswith("whsec_")
        await page.goto("/console/webhooks")
        assert await page.locator("#new-secret").count() == 0  # shown once
        await page.click(f"#endpoints a:has-text('{sink.url('/hook')}')")
        await page.wait_for_url("**/console/webhooks/*")
        endpoint_url = page.url
        emulator.inbound(t.account["account_sid"], from_="+14155550123", body="hello")
        await settle(emulator)

        async def delivered(p: Any) -> bool:
            return "succeeded" in (await p.text_content("#deliveries") or "")

        await _until(page, delivered)
        assert await page.locator("#deliveries .attempts li").count() == 1
        await page.click("#deliveries .resend")
        await page.wait_for_url("**resent=**")

        async def twice(p: Any) -> bool:
            return await p.locator("#deliveries .attempts li").count() == 2

        await _until(page, twice)
        await shot(page, "webhook-endpoint")
        await page.click("#rotate")
        second_secret = (await page.text_content("#new-secret") or "").strip()
        assert second_secret.startswith("whsec_") and second_secret != first_secret
        await page.goto(endpoint_url)
        await page.click("#edit-endpoint >> xpath=.. >> summary")
        await page.uncheck("#edit-endpoint input[value='message.received']")
        await page.click("#save-endpoint")
        assert await page.locator("#error-events").count() == 1  # at least one event, as the API says
        await page.check("#edit-endpoint input[value='contact.opted_out']")
        await page.click("#save-endpoint")
        await page.wait_for_url(endpoint_url)
        assert "contact.opted_out" in (await page.text_content("dl.facts") or "")
        await page.click("#disable")
        await page.wait_for_url(endpoint_url)
        assert (await page.text_content("#status") or "").strip() == "disabled"
        assert await page.locator("#deliveries .resend").count() == 0
        await sign_out(page)
    assert len(sink.received("/hook")) == 2


async def test_settings_retention_and_template_sync(client: Any, emulator: Any, gateway: str, tmp_path: Path) -> None:
    t = await wired_tenant(client, emulator, gateway)
    emulator.review_template(t.content_sid, approval="rejected", rejection_reason="too <i>salesy</i>")
    async with browser_page(gateway, tmp_path) as page:
        await sign_in(page, _key(t))
        await page.goto("/console/settings")
        row = page.locator("#contents tr", has_text=t.content_sid)
        assert (await row.locator(".approval").text_content() or "").strip() == "approved"  # as synced at the PUT
        await page.click("#sync-now")
        assert await page.locator("#synced").count() == 1
        row = page.locator("#contents tr", has_text=t.content_sid)
        assert (await row.locator(".approval").text_content() or "").strip() == "rejected"
        assert "too <i>salesy</i>" in (await row.text_content() or "")
        # Retention: the service's 422s beside their fields, then a saved change.
        await page.goto("/console/settings")
        await page.fill("[name=body_days]", "120")
        await page.click("#save-retention")
        assert await page.locator("#error-body_days").count() == 1
        await page.fill("[name=body_days]", "60")
        await page.fill("[name=metadata_days]", "45")
        await page.click("#save-retention")
        assert "may not exceed" in (await page.text_content("#error-body_days") or "")
        await page.fill("[name=body_days]", "14")
        await page.fill("[name=metadata_days]", "180")
        await page.click("#save-retention")
        await page.wait_for_url("**/console/settings")
        assert await page.input_value("[name=body_days]") == "14"
        await shot(page, "settings")
        await sign_out(page)
    assert (await client.get("/v1/settings/retention", headers=t.admin)).json() == {
        "body_days": 14,
        "metadata_days": 180,
    }
    audit = (await client.get("/v1/audit-log", params={"action": "templates.synced"}, headers=t.admin)).json()
    assert len(audit["items"]) == 1


async def test_delete_a_template_and_lift_from_the_suppressions_list(client: Any, gateway: str, tmp_path: Path) -> None:
    """The last two /v1 admin actions in the browser: delete a template after the confirm(), and find a
    suppression in the tenant-wide list, open its contact, come back and lift it."""
    _, key = await _admin(client)
    admin = bearer(key)
    assert (await client.post("/v1/templates", json=ORDER_SHIPPED, headers=admin)).status_code == 201
    for person in ({"email": "ava@example.com", "channel": "email"}, {"phone": "+14155550123", "channel": "whatsapp"}):
        r = await client.post("/v1/suppressions", json={**person, "reason": "asked"}, headers=admin)
        assert r.status_code == 201, r.text
    async with browser_page(gateway, tmp_path) as page:
        asked: list[str] = []
        page.on("dialog", lambda dialog: asked.append(dialog.message))  # browser_page accepts it
        await sign_in(page, key)
        await page.goto("/console/templates/order_shipped")
        await page.click("#delete")
        await page.wait_for_url("**/console/templates?deleted=order_shipped")
        assert asked and "order_shipped" in asked[0]
        assert await page.locator("#templates a", has_text="order_shipped").count() == 0
        assert (await client.get("/v1/templates/order_shipped", headers=admin)).status_code == 404

        await page.click("nav a[href='/console/suppressions']")
        assert await page.locator("#suppressions tbody tr[data-suppression]").count() == 2
        await page.select_option("[name=channel]", "email")
        await page.click("#filter")
        rows = page.locator("#suppressions tbody tr[data-suppression]")
        assert await rows.count() == 1
        await shot(page, "suppressions")
        await rows.locator("a.contact", has_text="ava@example.com").click()
        await page.wait_for_url("**/console/contacts/*")
        await page.go_back()
        await page.locator("#suppressions tbody tr[data-suppression] button.lift").click()
        await page.wait_for_url("**/console/suppressions")
        assert len(asked) == 2
        assert await page.locator("#suppressions tbody tr[data-suppression]").count() == 1  # the WhatsApp one left
        left = (await client.get("/v1/suppressions", headers=admin)).json()["items"]
        assert [s["channel"] for s in left] == ["whatsapp"]
        await sign_out(page)
