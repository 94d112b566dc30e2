"""The operator view in headless Chromium against the gateway as a real server: sign in with the
operator token, suspend a tenant and see it suspended, reactivate it, see the dead letters and retry
one, sign out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import OPERATOR_TOKEN
from tests.console.browser import browser_page, shot
from tests.console.test_operator_security import _state, dead_letter
from tests.console.test_pages import pytestmark  # noqa: F401  (skip without Chromium, as there)
from tests.factories import OPERATOR, bearer, make_key, make_tenant


async def operator_sign_in(page: Any) -> None:
    await page.goto("/console/operator/sign-in")
    await page.fill("#token", OPERATOR_TOKEN)
    await page.click("#sign-in")
    await page.wait_for_url("**/console/operator/tenants")


async def test_suspend_reactivate_and_retry_a_dead_letter(client: Any, gateway: str, tmp_path: Path) -> None:
    tenant = await make_tenant(client, "Acme <b>parcels</b>")
    other = await make_tenant(client)
    key = await make_key(client, tenant["id"], ["admin"])
    item = await dead_letter(tenant["id"], error="TypeError: an older shape of callback")
    async with browser_page(gateway, tmp_path) as page:
        # Wrong token first: refused, and nothing opens.
        await page.goto("/console/operator/sign-in")
        await page.fill("#token", "op_not_it")
        await page.click("#sign-in")
        assert "not the operator token" in (await page.text_content("[role=alert]") or "")
        await operator_sign_in(page)
        row = page.locator(f"#tenants tr[data-tenant='{tenant['id']}']")
        assert await row.locator("td.status").text_content() == "active"
        assert await page.locator(f"#tenants tr[data-tenant='{other['id']}']").count() == 1
        await shot(page, "operator-tenants")

        # Suspend (after the confirm() the console asks): the tenant page and the list say so.
        await row.locator("a").click()
        await page.wait_for_url(f"**/console/operator/tenants/{tenant['id']}")
        assert await page.text_content("h1") == "Acme <b>parcels</b>"  # shown as text
        await page.click("#suspend")
        await page.wait_for_url("**?changed=suspended")
        assert await page.text_content("#status") == "suspended"
        assert await page.locator("#reactivate").count() == 1
        assert "suspended" in (await page.text_content("#history tbody") or "")
        await shot(page, "operator-tenant")
        assert (await client.get("/v1/api-keys", headers=bearer(key))).status_code == 403
        await page.goto("/console/operator/tenants?status=suspended")
        assert await page.locator(f"#tenants tr[data-tenant='{tenant['id']}']").count() == 1
        assert await page.locator(f"#tenants tr[data-tenant='{other['id']}']").count() == 0
        await page.select_option("select[name=status]", "active")
        await page.click("#filter")
        await page.wait_for_url("**status=active**")
        assert await page.locator(f"#tenants tr[data-tenant='{tenant['id']}']").count() == 0
        assert await page.locator(f"#tenants tr[data-tenant='{other['id']}']").count() == 1

        # Reactivate: its key works again.
        await page.goto(f"/console/operator/tenants/{tenant['id']}")
        await page.click("#reactivate")
        await page.wait_for_url("**?changed=active")
        assert await page.text_content("#status") == "active"
        assert (await client.get("/v1/api-keys", headers=bearer(key))).status_code == 200
        assert "TypeError: an older shape" in (await page.text_content("#dead tbody") or "")

        # Queue health: the outbox, the dead letters by kind, and a retry.
        await page.click("text=Queues and dead letters")
        await page.wait_for_url("**/console/operator/queues")
        assert await page.locator("#pending").count() == 1 and await page.locator("#oldest").count() == 1
        assert await page.text_content("#by-kind tr[data-kind='event.process'] .count") == "1"
        dead = page.locator(f"#dead tr[data-dead='{item}']")
        assert "Acme <b>parcels</b>" in (await dead.text_content() or "")
        await page.select_option("select[name=kind]", "event.process")
        await page.click("#filter")
        await page.wait_for_url("**kind=event.process**")
        await shot(page, "operator-queues")
        await dead.locator("button.retry").click()
        await page.wait_for_url("**/console/operator/queues?retried=*")
        assert await page.locator("#retried").count() == 1
        assert await page.locator(f"#dead tr[data-dead='{item}']").count() == 0
        assert await page.locator("#by-kind tr[data-kind='event.process']").count() == 0
        # Pending again, or already done if a worker of this test run picked its job up (no such event).
        assert await _state(item) in ("pending", "done")

        # Sign out: the operator pages send us back to sign in.
        await page.click("#sign-out")
        await page.wait_for_url("**/console/operator/sign-in")
        await page.goto("/console/operator/queues")
        await page.wait_for_url("**/console/operator/sign-in")
    # Both changes are in the tenant's audit log, made by the operator, as the API records them.
    log = (await client.get("/v1/audit-log", params={"action": "tenant.updated"}, headers=bearer(key))).json()
    assert [(e["actor_type"], e["after"]["status"]) for e in log["items"]] == [
        ("operator", "active"),
        ("operator", "suspended"),
    ]
    assert (await client.get(f"/operator/v1/tenants/{tenant['id']}", headers=OPERATOR)).json()["status"] == "active"
