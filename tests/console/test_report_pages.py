"""The console's inbound messages, usage and dashboard pages in headless Chromium against the gateway
as a real server, with real traffic through the emulator: sign in, look, see it, sign out."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from app.core.db import utcnow
from app.outbox.models import OutboxItem
from tests.console.browser import browser_page, shot, sign_in, sign_out
from tests.console.test_config_pages import _key
from tests.console.test_pages import pytestmark  # noqa: F401  (skip without Chromium, as there)
from tests.factories import make_tenant
from tests.support.gateway import notify, read, settle, wired_tenant


async def test_inbound_messages_filter_and_usage(
    client: Any, emulator: Any, gateway: str, worker: Any, tmp_path: Path
) -> None:
    t = await wired_tenant(client, emulator, gateway)
    emulator.inbound(t.account["account_sid"], from_="+14155550123", body="where is my <b>order</b>?")
    await settle(emulator)
    emulator.inbound(t.account["account_sid"], from_="+14155550124", body="thanks")
    await settle(emulator)
    sent = await notify(client, t)  # a template on WhatsApp: one accepted send to count
    await settle(emulator)
    assert (await read(client, t, sent))["status"] in ("delivered", "read")
    async with browser_page(gateway, tmp_path) as page:
        await sign_in(page, _key(t))
        await page.goto("/console/messages")
        bodies = await page.locator("#messages td.body").all_text_contents()
        assert [b.strip() for b in bodies] == ["thanks", "where is my <b>order</b>?"]
        await shot(page, "messages")
        await page.fill("[name=q]", "ORDER")
        await page.click("#filter")
        await page.wait_for_url("**q=ORDER**")
        assert await page.locator("#messages td.body").count() == 1
        # From a message to its person, and back to that person's messages only.
        await page.click("#messages a:has-text('contact')")
        await page.wait_for_url("**/console/contacts/*")
        assert "+14155550123" in (await page.text_content("#identifiers") or "")
        assert "open" in (await page.text_content("#windows") or "")  # they wrote in: the 24 h window is open
        await page.click("a:has-text('Their inbound messages')")
        await page.wait_for_url("**/console/messages?contact=*")
        assert await page.locator("#messages td.body").count() == 1

        await page.goto("/console/usage")
        month = page.locator(".usage-month")
        assert await month.count() == 1
        assert (await month.locator(".total").text_content() or "").strip() == "1"
        assert (await month.locator(".channel-whatsapp").text_content() or "").strip() == "1"
        await shot(page, "usage")
        await page.fill("[name=from]", "2026-13")
        await page.click("#filter")
        assert "YYYY-MM" in (await page.text_content("#error") or "")
        await sign_out(page)


async def test_dashboard_charts_outcomes_channels_and_fallbacks(
    client: Any, emulator: Any, gateway: str, worker: Any, session: Any, tmp_path: Path
) -> None:
    t = await wired_tenant(client, emulator, gateway)
    # A job of this tenant that ran out of tries (the outbox's dead letter), and one of another tenant.
    other = await make_tenant(client)
    for tenant_id in (t.id, other["id"]):
        session.add(
            OutboxItem(
                tenant_id=uuid.UUID(tenant_id), kind="send_email", ref_id=uuid.uuid4(), state="dead", dead_at=utcnow()
            )
        )
    await session.commit()
    await notify(client, t)  # template on WhatsApp: delivered
    # Text outside the 24 h window: WhatsApp cannot carry it, so it falls back to email (window_closed).
    fell = await notify(client, t, to={"phone": "+14155550177", "email": "ben@example.com"}, text="your code")
    await notify(client, t, to={"phone": "+15005550001"})  # invalid To: WhatsApp fails
    await settle(emulator)
    assert (await read(client, t, fell))["channel"] == "email"
    async with browser_page(gateway, tmp_path) as page:
        await sign_in(page, _key(t))
        await page.goto("/console/dashboard")
        # Server-rendered SVG: bars with their numbers, no script and no external request.
        assert await page.locator("#chart-outcomes rect").count() >= 1
        outcomes = " ".join(await page.locator("#chart-outcomes rect title").all_text_contents())
        assert "delivered" in outcomes
        channels = await page.text_content("#chart-channels") or ""
        assert "whatsapp" in channels and "email" in channels
        fallbacks = await page.text_content("#chart-fallbacks") or ""
        assert "window_closed" in fallbacks
        legend_total = 0
        for outcome in ("delivered", "sent", "in-progress", "failed"):
            legend_total += int((await page.locator(f".total-{outcome}").text_content() or "0").strip())
        assert legend_total == 3
        delivery = await page.text_content("#chart-delivery") or ""
        assert "whatsapp p50" in delivery and "whatsapp p95" in delivery and "email p95" in delivery
        assert await page.locator("#chart-dead text.key").all_text_contents() == ["send_email"]
        assert await page.locator("#chart-dead text.count").all_text_contents() == ["1"]  # its own only
        await shot(page, "dashboard")
        await page.click("#range-7d")
        await page.wait_for_url("**range=7d")
        assert await page.locator("#chart-outcomes rect").count() >= 1
        assert "window_closed" in (await page.text_content("#chart-fallbacks") or "")
        await sign_out(page)
