"""Every console page in headless Chromium against the gateway as a real server: sign in, do the
page's main task, see the result, sign out."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from tests.console.browser import CHROMIUM, browser_page, shot, sign_in, sign_out
from tests.factories import make_key, make_tenant

pytestmark = pytest.mark.skipif(
    # .ci/services installs the package wherever apt can reach it (lists, or its cache) and warns when it
    # cannot; a machine with no browser at all skips these rather than failing the whole suite.
    not os.access(CHROMIUM, os.X_OK),
    reason="Debian's chromium is not installed (apt-get install chromium)",
)


async def _admin(client: Any) -> tuple[dict[str, Any], str]:
    tenant = await make_tenant(client)
    return tenant, await make_key(client, tenant["id"], ["admin"])


async def test_notifications_send_and_timeline(client: Any, gateway: str, worker: Any, tmp_path: Path) -> None:
    _, key = await _admin(client)
    async with browser_page(gateway, tmp_path) as page:
        await sign_in(page, key)
        await page.fill("#send-form [name=email]", "ava@example.com")
        await page.fill("#send-form [name=text]", "<script>window.pwned=1</script> your parcel")
        await page.click("#send")
        await page.wait_for_url("**/console/notifications/*")
        assert await page.evaluate("window.pwned === undefined")
        assert "<script>window.pwned=1</script>" in await page.text_content("dd.body")  # shown, as text
        # The worker routes it: no SendGrid credentials, so the timeline records why it failed.
        for _ in range(60):
            if "decision" in (await page.get_attribute("#timeline li", "class") or ""):
                break
            await asyncio.sleep(0.25)
            await page.reload()
        assert await page.locator("#timeline li.decision").count() >= 1
        await shot(page, "notification")
        # The list shows it, and its filters narrow it down.
        await page.goto("/console/notifications")
        assert await page.locator("#live tbody tr a").count() == 1
        await page.select_option("select[name=channel]", "whatsapp")
        await page.click("#filter")
        await page.wait_for_url("**channel=whatsapp**")
        assert await page.locator("#live tbody tr a").count() == 0
        await sign_out(page)


async def test_api_keys_create_shown_once_and_revoke(client: Any, gateway: str, tmp_path: Path) -> None:
    _, key = await _admin(client)
    async with browser_page(gateway, tmp_path) as page:
        await sign_in(page, key)
        await page.goto("/console/api-keys")
        await page.fill("#create-key [name=name]", "billing <b>bot</b>")
        await page.check("#create-key input[value='notifications:send']")
        await page.click("#create")
        new_key = (await page.text_content("#new-key") or "").strip()
        assert new_key.startswith("ngw_live_")
        await page.goto("/console/api-keys")
        assert await page.locator("#new-key").count() == 0  # shown once
        row = page.locator("#keys tr", has_text="billing <b>bot</b>")
        await row.locator("button", has_text="Revoke").click()
        await page.wait_for_url("**/console/api-keys")
        assert "revoked" in (await page.locator("#keys tr", has_text="billing").text_content() or "")
        r = await client.get("/v1/api-keys", headers={"Authorization": f"Bearer {new_key}"})
        assert r.status_code == 401
        await sign_out(page)


async def test_audit_log_filters(client: Any, gateway: str, tmp_path: Path) -> None:
    _, key = await _admin(client)
    async with browser_page(gateway, tmp_path) as page:
        await sign_in(page, key)
        await page.goto("/console/api-keys")
        await page.fill("#create-key [name=name]", "audited")
        await page.check("#create-key input[value='admin']")
        await page.click("#create")
        await page.goto("/console/audit-log")
        await page.fill("[name=action]", "api_key.created")
        await page.click("#filter")
        await page.wait_for_url("**action=api_key.created**")
        # The operator's key that signed us in, and the one made here, by this key.
        rows = page.locator("#audit tbody tr", has_text="api_key.created")
        assert await rows.count() == 2
        assert await rows.filter(has_text="audited").count() == 1
        await page.fill("[name=action]", "template.created")
        await page.click("#filter")
        await page.wait_for_url("**action=template.created**")
        assert "No entries match" in (await page.text_content("#audit") or "")
        await sign_out(page)


async def test_templates_create_preview_and_edit(client: Any, gateway: str, tmp_path: Path) -> None:
    _, key = await _admin(client)
    async with browser_page(gateway, tmp_path) as page:
        await sign_in(page, key)
        await page.goto("/console/templates")
        await page.click("#new-template")
        await page.fill("[name=key]", "welcome")
        await page.fill("[name=sample]", "name=<i>Ava</i>")
        await page.click("#preview")
        assert "Hello <i>Ava</i>" in (await page.text_content("#preview-out .subject") or "")
        await page.click("#save")
        await page.wait_for_url("**/console/templates/welcome")
        # A bad body is refused with its reason, and nothing changes.
        await page.fill("[name=body]", '{"default_locale": "en", "locales": {}}')
        await page.click("#save")
        assert await page.locator("#error").count() == 1
        await page.goto("/console/templates")
        assert await page.locator("#templates a", has_text="welcome").count() == 1
        await sign_out(page)
