"""An unapproved or paused WhatsApp template is never sent: the decision says why, and the email fallback
follows. End to end: gateway, Dramatiq worker on Redis, and the emulator's Content API."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from app.core.db import session_factory
from app.notify import pipeline, sending
from app.notify.models import Attempt, Notification
from tenants.templates import service as templates
from tests.support.gateway import TEMPLATE_KEY, notify, read, settle, wired_tenant

pytestmark = pytest.mark.usefixtures("worker")


def decisions(n: dict) -> list[tuple[str, str, str | None]]:
    return [(d["step"], d["result"], d["detail"]) for d in n["decisions"]]


def whatsapp_sent(emulator, account_sid: str) -> list[dict]:
    return [m for m in emulator.messages(account_sid=account_sid) if m["direction"].startswith("outbound")]


@pytest.mark.parametrize("status", ["pending", "paused", "rejected", "disabled"])
async def test_an_unapproved_template_goes_by_email_with_the_reason(client, emulator, gateway, status):
    t = await wired_tenant(client, emulator, gateway)
    emulator.review_template(t.content_sid, approval=status, rejection_reason="low quality")
    assert (await client.post("/v1/templates/sync", headers=t.admin)).status_code == 200
    nid = await notify(client, t)
    await settle(emulator)
    n = await read(client, t, nid)
    assert n["channel"] == "email" and n["status"] == "delivered", n
    assert [a["channel"] for a in n["attempts"]] == ["email"]
    (template_step,) = [d for d in decisions(n) if d[0] == "template"]
    assert template_step[1] == status and t.content_sid in template_step[2] and status in template_step[2]
    assert ("fallback", "email", "template_unapproved") in decisions(n)
    assert whatsapp_sent(emulator, t.account["account_sid"]) == []  # nothing reached Twilio


async def test_an_approved_template_is_sent_with_twilios_variables(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    nid = await notify(client, t)
    await settle(emulator)
    n = await read(client, t, nid)
    assert n["channel"] == "whatsapp" and not [d for d in decisions(n) if d[0] == "template"], n
    (sent,) = whatsapp_sent(emulator, t.account["account_sid"])
    assert json.loads(dict(sent["request"])["ContentVariables"]) == {"1": "Ava", "2": "18473"}


async def test_a_template_not_listed_by_the_account_any_more_is_not_sent(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    del emulator.state.templates[t.content_sid]
    await client.post("/v1/templates/sync", headers=t.admin)
    n = await read(client, t, await notify(client, t))
    await settle(emulator)
    n = await read(client, t, n["id"])
    assert n["channel"] == "email", n
    assert any(d[:2] == ("template", "not_found") for d in decisions(n))


async def test_a_policy_without_the_new_reason_still_falls_back_as_failed(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    policy = {"require_whatsapp_opt_in": False, "fallback": {"email_on": ["window_closed", "failed"]}}
    assert (await client.put("/v1/routing", json=policy, headers=t.admin)).status_code == 200
    emulator.review_template(t.content_sid, approval="paused")
    await client.post("/v1/templates/sync", headers=t.admin)
    n = await read(client, t, await notify(client, t))
    await settle(emulator)
    n = await read(client, t, n["id"])
    assert n["channel"] == "email" and ("fallback", "email", "failed") in decisions(n), n


async def test_paused_between_routing_and_sending_is_caught_at_send_time(client, emulator, gateway):
    """The send job reads the approval again (with the template, from the cache): a pause that lands after
    routing still stops the send."""
    t = await wired_tenant(client, emulator, gateway)
    nid = await notify(client, t, channels=["whatsapp", "email"])
    await settle(emulator)
    # Replay the send step by hand on a fresh attempt, after pausing the template in Twilio and syncing.
    emulator.review_template(t.content_sid, approval="paused")
    await client.post("/v1/templates/sync", headers=t.admin)
    async with session_factory()() as s:
        n = (await s.scalars(select(Notification).where(Notification.template_key == TEMPLATE_KEY))).one()
        assert str(n.id) == nid
        templates._contents.invalidate((n.tenant_id, TEMPLATE_KEY))
        n.status, n.channel = "queued", "whatsapp"
        attempt = Attempt(
            tenant_id=n.tenant_id,
            notification_id=n.id,
            channel="whatsapp",
            kind="template",
            provider="twilio",
            sender=t.account["whatsapp_from"],
            status="pending",
        )
        s.add(attempt)
        await s.flush()
        await pipeline.lock(s, n, attempt)
        await sending.send(s, n, attempt)
        assert (attempt.status, attempt.error_class) == ("failed", "template_invalid")
        assert "paused" in (attempt.error_message or "")
        await s.rollback()
    assert len(whatsapp_sent(emulator, t.account["account_sid"])) == 1  # only the first, approved, send
