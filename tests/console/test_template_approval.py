"""The console's Templates page shows what Twilio's Content API says of each template (docs/templates.md)."""

from __future__ import annotations

from typing import Any

from tests.console.test_session import _sign_in
from tests.support.gateway import wired_tenant


async def test_the_template_list_shows_the_whatsapp_approval(client: Any, emulator: Any, gateway: str) -> None:
    t = await wired_tenant(client, emulator, gateway)
    emulator.review_template(t.content_sid, approval="paused")
    assert (await client.post("/v1/templates/sync", headers=t.admin)).status_code == 200
    assert (await _sign_in(client, t.admin["Authorization"].removeprefix("Bearer "))).status_code == 303
    page = await client.get("/console/templates")
    assert page.status_code == 200 and '<td class="approval">paused</td>' in page.text
