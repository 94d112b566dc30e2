"""The pipeline and inbound processing tell tenant apps what happened, through their webhook endpoints."""

from __future__ import annotations

from app.endpoints import urls
from channels.signatures import verify_standard_webhook
from tests.support.gateway import notify, settle, wired_tenant

USER = "+14155550123"


async def test_tenant_app_receives_signed_events(client, emulator, gateway, worker, callback_sink, monkeypatch):
    monkeypatch.setattr(urls, "EXTRA_TRUSTED_HOSTS", {callback_sink.base_url.removeprefix("http://")})
    t = await wired_tenant(client, emulator, gateway)
    r = await client.post(
        "/v1/webhook-endpoints",
        headers=t.admin,
        json={
            "url": callback_sink.url("/hooks"),
            "events": ["notification.updated", "message.received", "contact.opted_out", "contact.opted_in"],
        },
    )
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]

    nid = await notify(client, t)
    emulator.inbound(t.account["account_sid"], from_=USER, body="Thanks!")
    emulator.inbound(t.account["account_sid"], from_=USER, body="STOP")
    await settle(emulator)
    received = callback_sink.wait_for(count=4, path="/hooks")
    events = []
    for req in received:
        assert verify_standard_webhook(
            secret,
            req.headers["webhook-id"],
            req.headers["webhook-timestamp"],
            req.body,
            req.headers["webhook-signature"],
        )
        events.append(req.json())
    kinds = [e["type"] for e in events]
    updates = [e["data"]["status"] for e in events if e["type"] == "notification.updated" and e["data"]["id"] == nid]
    assert "read" in updates and len(updates) == len(set(updates)), updates  # each status change told once
    assert [e["data"]["body"] for e in events if e["type"] == "message.received"] == ["Thanks!"]
    (opted_out,) = [e for e in events if e["type"] == "contact.opted_out"]
    assert opted_out["data"]["address"] == USER and opted_out["data"]["evidence"].startswith("SM")
    assert "contact.opted_in" not in kinds
