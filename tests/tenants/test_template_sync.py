"""Templates synced from the tenant's Twilio Content API (issue 14, part 1), against the emulator."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app.core.db import session_factory, utcnow
from app.notify import maintenance
from tenants.templates.models import ContentSync, Template, TwilioContent
from tests.factories import OPERATOR, bearer, make_key
from tests.support.gateway import TEMPLATE_KEY, wired_tenant


def template(content_sid: str, variables: list[str] | None = None, key: str = "shipped") -> dict:
    return {
        "key": key,
        "default_locale": "en",
        "locales": {
            "en": {
                "whatsapp": {"content_sid": content_sid, "variables": variables or ["name", "order"]},
                "email": {"subject": "Order {{order}}", "text": "Hi {{name}}"},
            }
        },
    }


async def contents_of(tenant_id: str) -> dict[str, TwilioContent]:
    async with session_factory()() as s:
        rows = (await s.scalars(select(TwilioContent))).all()
        return {r.content_sid: r for r in rows if str(r.tenant_id) == tenant_id}


async def test_storing_credentials_syncs_every_status_category_language_and_variables(client, emulator, gateway):
    # wired_tenant stores the credentials first; these templates are made after, so sync on demand.
    t = await wired_tenant(client, emulator, gateway)
    account = t.account["account_sid"]
    made = {
        "approved": emulator.create_template(account, ["1", "2"], category="MARKETING", language="pt_BR"),
        "pending": emulator.create_template(account, ["1"], approval="pending"),
        "rejected": emulator.create_template(account, [], approval="rejected", category="AUTHENTICATION"),
        "unsubmitted": emulator.create_template(account, [], approval="unsubmitted"),
        "paused": emulator.create_template(account, [], approval="paused", category="TRANSACTIONAL"),
        "disabled": emulator.create_template(account, [], approval="disabled"),
        "in_appeal": emulator.create_template(account, [], approval="in_appeal"),
    }
    r = await client.post("/v1/templates/sync", headers=t.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["account_sid"] == account and body["items"] == 8  # with wired_tenant's own template
    assert body["by_status"] == {
        "approved": 2,
        "pending": 1,
        "rejected": 1,
        "unsubmitted": 1,
        "paused": 1,
        "disabled": 1,
        "unknown": 1,
    }
    stored = await contents_of(t.id)
    for status, sid in made.items():
        row = stored[sid]
        assert row.twilio_status == status
        assert row.approval_status == (status if status != "in_appeal" else "unknown")
    assert (stored[made["approved"]].category, stored[made["approved"]].language) == ("MARKETING", "pt_BR")
    assert stored[made["approved"]].variables == {"1": "sample_1", "2": "sample_2"}
    assert stored[made["paused"]].category == "TRANSACTIONAL"
    listed = {c["content_sid"]: c for c in body["contents"]}
    assert listed[made["in_appeal"]]["approval_status"] == "unknown"
    assert listed[made["in_appeal"]]["twilio_status"] == "in_appeal"
    audit = (await client.get("/v1/audit-log?action=templates.synced", headers=t.admin)).json()["items"]
    assert len(audit) == 1 and audit[0]["target_id"] == account and audit[0]["after"]["items"] == 8


async def test_put_twilio_credentials_syncs_at_once(client, emulator):
    r = await client.post("/operator/v1/tenants", json={"name": "Sync on store"}, headers=OPERATOR)
    tenant_id = r.json()["id"]
    admin = bearer(await make_key(client, tenant_id, ["admin"]))
    account = emulator.create_account()
    sid = emulator.create_template(account["account_sid"], ["1"], approval="pending")
    r = await client.put(
        "/v1/providers/twilio",
        headers=admin,
        json={
            "account_sid": account["account_sid"],
            "auth_token": account["auth_token"],
            "whatsapp_from": account["whatsapp_from"],
        },
    )
    assert r.status_code == 200, r.text
    stored = await contents_of(tenant_id)
    assert set(stored) == {sid} and stored[sid].approval_status == "pending"


async def test_unknown_or_another_accounts_content_sid_is_a_pointed_422(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    other = emulator.create_account()
    theirs = emulator.create_template(other["account_sid"], ["1", "2"])
    for sid in ("HX" + "0" * 32, theirs):
        r = await client.post("/v1/templates", json=template(sid), headers=t.admin)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        (error,) = r.json()["errors"]
        assert error["pointer"] == "/locales/en/whatsapp/content_sid" and sid in error["detail"]
    # PUT too, on an existing template
    r = await client.put(
        f"/v1/templates/{TEMPLATE_KEY}", json={k: v for k, v in template(theirs).items() if k != "key"}, headers=t.admin
    )
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/locales/en/whatsapp/content_sid"


async def test_a_template_made_in_twilio_a_moment_ago_is_synced_before_the_check(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    fresh = emulator.create_template(t.account["account_sid"], ["1", "2"])  # not synced yet
    r = await client.post("/v1/templates", json=template(fresh), headers=t.admin)
    assert r.status_code == 201, r.text
    assert r.json()["approval_status"] == "approved"


async def test_variables_must_fill_twilios_placeholders(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    three = emulator.create_template(t.account["account_sid"], ["1", "2", "3"])
    r = await client.post("/v1/templates", json=template(three, ["name", "order"]), headers=t.admin)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["pointer"] == "/locales/en/whatsapp/variables"
    named = emulator.create_template(t.account["account_sid"], ["first_name"])
    r = await client.post("/v1/templates", json=template(named, ["name"], key="named"), headers=t.admin)
    assert r.status_code == 422 and "first_name" in r.json()["errors"][0]["detail"]
    r = await client.post("/v1/templates", json=template(named, ["first_name"], key="named"), headers=t.admin)
    assert r.status_code == 201, r.text


async def test_an_unapproved_template_is_accepted_and_flagged(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    pending = emulator.create_template(t.account["account_sid"], ["1", "2"], approval="pending", category="MARKETING")
    r = await client.post("/v1/templates", json=template(pending), headers=t.admin)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["approval_status"] == "pending"
    en = out["whatsapp_approvals"]["en"]
    assert (en["content_sid"], en["approval_status"], en["sendable"], en["category"]) == (
        pending,
        "pending",
        False,
        "MARKETING",
    )
    assert en["variables"] == ["1", "2"]
    read = (await client.get("/v1/templates/shipped", headers=t.admin)).json()
    assert read["approval_status"] == "pending"


async def test_approval_changes_in_twilio_show_after_a_sync(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    assert (await client.get(f"/v1/templates/{TEMPLATE_KEY}", headers=t.admin)).json()["approval_status"] == "approved"
    emulator.review_template(t.content_sid, approval="paused")
    r = await client.post("/v1/templates/sync", headers=t.admin)
    assert r.json()["templates_changed"] == [TEMPLATE_KEY]
    out = (await client.get(f"/v1/templates/{TEMPLATE_KEY}", headers=t.admin)).json()
    assert out["approval_status"] == "paused" and out["whatsapp_approvals"]["en"]["sendable"] is False
    emulator.review_template(t.content_sid, approval="approved")
    await client.post("/v1/templates/sync", headers=t.admin)
    out = (await client.get(f"/v1/templates/{TEMPLATE_KEY}", headers=t.admin)).json()
    assert out["approval_status"] == "approved"
    # Deleted in Twilio: not_found, never sent.
    del emulator.state.templates[t.content_sid]
    assert (await client.post("/v1/templates/sync", headers=t.admin)).json()["items"] == 0
    out = (await client.get(f"/v1/templates/{TEMPLATE_KEY}", headers=t.admin)).json()
    assert out["approval_status"] == "not_found"


async def test_without_twilio_credentials_a_template_is_unverified_and_sync_is_409(client):
    r = await client.post("/operator/v1/tenants", json={"name": "No Twilio"}, headers=OPERATOR)
    admin = bearer(await make_key(client, r.json()["id"], ["admin"]))
    r = await client.post("/v1/templates", json=template("HX" + "a" * 32), headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["approval_status"] == "unverified" and r.json()["whatsapp_approvals"]["en"]["sendable"] is True
    r = await client.post("/v1/templates/sync", headers=admin)
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")


async def test_sync_needs_a_live_admin_key(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    sender = bearer(await make_key(client, t.id, ["notifications:send"]))
    assert (await client.post("/v1/templates/sync", headers=sender)).status_code == 403
    test_admin = bearer(await make_key(client, t.id, ["admin"], environment="test"))
    assert (await client.post("/v1/templates/sync", headers=test_admin)).status_code == 403
    assert (await client.post("/v1/templates/sync")).status_code == 401


async def test_the_maintenance_pass_syncs_due_tenants_once(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    emulator.review_template(t.content_sid, approval="disabled")
    await maintenance.sync_templates()  # other tests' tenants may be due too: run until ours is done
    async with session_factory()() as s:
        await s.execute(update(ContentSync).values(due_at=utcnow() - timedelta(seconds=1)))
        await s.commit()
    assert await maintenance.sync_templates(limit=100) >= 1
    async with session_factory()() as s:
        approvals = (await s.scalars(select(Template.approvals).where(Template.key == TEMPLATE_KEY))).all()
        state = (await s.scalars(select(ContentSync))).all()
    assert any(a.get(t.content_sid, {}).get("approval_status") == "disabled" for a in approvals)
    assert all(row.due_at > utcnow() + timedelta(minutes=10) for row in state if str(row.tenant_id) == t.id)
    assert await maintenance.sync_templates(limit=100) == 0  # nothing due any more


async def test_sync_is_not_a_template_key(client):
    r = await client.post("/operator/v1/tenants", json={"name": "Reserved"}, headers=OPERATOR)
    admin = bearer(await make_key(client, r.json()["id"], ["admin"]))
    body = {"key": "sync", "default_locale": "en", "locales": {"en": {"email": {"subject": "s", "text": "t"}}}}
    r = await client.post("/v1/templates", json=body, headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/key"


async def test_a_content_sync_that_fails_with_put_keeps_the_credentials_and_is_due_soon(client, emulator, monkeypatch):
    from channels.base import ChannelError, FailureClass
    from tenants.templates import sync

    async def unreachable(creds):
        raise ChannelError(FailureClass.TRANSIENT, "could not reach Twilio (ClientConnectorError)")

    monkeypatch.setattr(sync, "fetch", unreachable)
    r = await client.post("/operator/v1/tenants", json={"name": "Sync fails"}, headers=OPERATOR)
    tenant_id = r.json()["id"]
    admin = bearer(await make_key(client, tenant_id, ["admin"]))
    account = emulator.create_account()
    creds = {"account_sid": account["account_sid"], "auth_token": account["auth_token"]}
    r = await client.put("/v1/providers/twilio", headers=admin, json=creds)
    assert r.status_code == 200, r.text
    async with session_factory()() as s:
        (state,) = [row for row in (await s.scalars(select(ContentSync))).all() if str(row.tenant_id) == tenant_id]
    assert state.synced_at is None and state.error.startswith("transient: could not reach Twilio")
    assert state.due_at <= utcnow() + sync.RETRY_FAILED_AFTER


async def test_two_syncs_at_once_one_wins_and_the_other_is_a_conflict(client, emulator, gateway):
    import asyncio
    import uuid

    import pytest

    from channels.base import TwilioCredentials
    from tenants.templates import sync

    t = await wired_tenant(client, emulator, gateway)
    for _ in range(3):
        emulator.create_template(t.account["account_sid"], ["1"])
    items = await sync.fetch(TwilioCredentials(t.account["account_sid"], t.account["auth_token"]))
    tenant_id, account = uuid.UUID(t.id), t.account["account_sid"]
    async with session_factory()() as first, session_factory()() as second:
        await sync.apply(first, tenant_id, account, items)  # flushed, not committed: holds the new rows
        racing = asyncio.create_task(sync.apply(second, tenant_id, account, items))  # waits on them
        await asyncio.sleep(0.3)
        await first.commit()
        with pytest.raises(sync.SyncRaced):
            await racing
        await second.rollback()
    assert len(await contents_of(t.id)) == 4
