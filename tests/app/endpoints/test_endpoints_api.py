"""Tenant admins manage webhook endpoints: vetted URLs, a secret shown once and sealed at rest, audit."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import select, update

from app.core.db import session_factory, utcnow
from app.endpoints.service import secret_of
from app.webhooks.models import WebhookEndpoint
from tests.app.endpoints.factories import ENDPOINTS, PUBLIC_URL, create_endpoint, stored_delivery
from tests.factories import bearer, make_key, tenant_with_key


async def audit_of(client, headers, target_id: str) -> list[dict]:
    r = await client.get("/v1/audit-log", params={"target_id": target_id}, headers=headers)
    assert r.status_code == 200, r.text
    return list(reversed(r.json()["items"]))  # oldest first


async def test_create_shows_the_secret_once_and_stores_it_sealed(client):
    _tenant, admin = await tenant_with_key(client, ["admin"])
    created = await create_endpoint(client, admin, events=["message.received", "contact.opted_out", "message.received"])
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert created["events"] == ["contact.opted_out", "message.received"]  # deduplicated, sorted
    assert created["status"] == "enabled" and created["failing_since"] is None and created["url"] == PUBLIC_URL

    read = (await client.get(f"{ENDPOINTS}/{created['id']}", headers=admin)).json()
    listed = (await client.get(ENDPOINTS, headers=admin)).json()["items"]
    assert read["secret"] == "…" + secret[-4:]
    assert [e["id"] for e in listed] == [created["id"]] and listed[0]["secret"] == read["secret"]
    assert secret not in json.dumps(read) + json.dumps(listed)

    async with session_factory()() as s:
        row = (
            await s.execute(select(WebhookEndpoint).where(WebhookEndpoint.id == uuid.UUID(created["id"])))
        ).scalar_one()
    assert secret not in row.secret_enc and secret[6:] not in row.secret_enc
    assert secret_of(row) == secret
    assert WebhookEndpoint.__table__.c.secret_enc.info == {"encrypted": True}  # key rotation finds it

    (entry,) = await audit_of(client, admin, created["id"])
    assert entry["action"] == "webhook_endpoint.created" and entry["actor_type"] == "api_key"
    assert entry["after"]["secret"] == read["secret"] and entry["after"]["url"] == PUBLIC_URL
    assert secret not in json.dumps(entry)


async def test_update_disable_reenable_and_delete_are_audited(client):
    _, admin = await tenant_with_key(client, ["admin"])
    created = await create_endpoint(client, admin)
    path = f"{ENDPOINTS}/{created['id']}"

    r = await client.patch(path, json={"events": ["notification.updated"], "status": "disabled"}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["events"] == ["notification.updated"] and r.json()["status"] == "disabled"

    async with session_factory()() as s:  # as if it had been failing when it was disabled
        await s.execute(
            update(WebhookEndpoint).where(WebhookEndpoint.id == uuid.UUID(created["id"])).values(failing_since=utcnow())
        )
        await s.commit()
    assert (await client.get(path, headers=admin)).json()["failing_since"] is not None
    r = await client.patch(path, json={"status": "enabled"}, headers=admin)
    assert r.json()["status"] == "enabled" and r.json()["failing_since"] is None

    assert (await client.patch(path, json={"url": "https://93.184.215.15/v2"}, headers=admin)).json()[
        "url"
    ] == "https://93.184.215.15/v2"
    assert (await client.delete(path, headers=admin)).status_code == 204
    assert (await client.get(path, headers=admin)).status_code == 404

    actions = [e["action"] for e in await audit_of(client, admin, created["id"])]
    assert actions == [
        "webhook_endpoint.created",
        "webhook_endpoint.updated",
        "webhook_endpoint.updated",
        "webhook_endpoint.updated",
        "webhook_endpoint.deleted",
    ]
    entries = await audit_of(client, admin, created["id"])
    assert entries[1]["before"]["status"] == "enabled" and entries[1]["after"]["status"] == "disabled"
    assert entries[2]["before"]["failing_since"] is not None and entries[2]["after"]["failing_since"] is None
    assert all(created["secret"] not in json.dumps(e) for e in entries)


async def test_a_patch_that_changes_nothing_is_not_audited(client):
    _, admin = await tenant_with_key(client, ["admin"])
    created = await create_endpoint(client, admin, events=["message.received"])
    r = await client.patch(
        f"{ENDPOINTS}/{created['id']}", json={"events": ["message.received"], "status": "enabled"}, headers=admin
    )
    assert r.status_code == 200
    assert [e["action"] for e in await audit_of(client, admin, created["id"])] == ["webhook_endpoint.created"]


async def test_rotate_secret_shows_the_new_one_once(client):
    _, admin = await tenant_with_key(client, ["admin"])
    created = await create_endpoint(client, admin)
    r = await client.post(f"{ENDPOINTS}/{created['id']}/rotate-secret", headers=admin)
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new.startswith("whsec_") and new != created["secret"]
    assert (await client.get(f"{ENDPOINTS}/{created['id']}", headers=admin)).json()["secret"] == "…" + new[-4:]
    entry = (await audit_of(client, admin, created["id"]))[-1]
    assert entry["action"] == "webhook_endpoint.secret_rotated"
    assert entry["before"]["secret"] == "…" + created["secret"][-4:] and entry["after"]["secret"] == "…" + new[-4:]
    assert new not in json.dumps(entry)


async def test_refused_urls_are_422_on_url(client):
    _, admin = await tenant_with_key(client, ["admin"])
    for url, reason in [
        ("https://10.0.0.1/hook", "private address"),
        ("https://169.254.169.254/latest/meta-data/", "cloud metadata endpoint"),
        ("https://localhost/hook", "loopback address"),
        ("ftp://93.184.215.14/hook", "must use https or http"),  # tests run with http allowed (dev rule)
        ("https://user:secret@93.184.215.14/", "must not carry credentials"),
    ]:
        r = await client.post(ENDPOINTS, json={"url": url, "events": ["message.received"]}, headers=admin)
        assert r.status_code == 422, (url, r.text)
        body = r.json()
        assert body["errors"][0]["pointer"] == "/url" and reason in body["detail"], (url, body)
        assert body["detail"].startswith("this URL is refused: ")
    created = await create_endpoint(client, admin)
    r = await client.patch(f"{ENDPOINTS}/{created['id']}", json={"url": "https://10.1.2.3/"}, headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/url"
    assert (await client.get(f"{ENDPOINTS}/{created['id']}", headers=admin)).json()["url"] == PUBLIC_URL
    assert (await client.get(ENDPOINTS, headers=admin)).json()["items"] == [
        (await client.get(f"{ENDPOINTS}/{created['id']}", headers=admin)).json()
    ]


async def test_bad_bodies_are_422(client):
    _, admin = await tenant_with_key(client, ["admin"])
    for body, pointer in [
        ({"url": PUBLIC_URL, "events": ["message.sent"]}, "/events/0"),
        ({"url": PUBLIC_URL, "events": []}, "/events"),
        ({"url": PUBLIC_URL}, "/events"),
        ({"url": PUBLIC_URL, "events": ["message.received"], "secret": "whsec_x"}, "/secret"),
    ]:
        r = await client.post(ENDPOINTS, json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["errors"][0]["pointer"] == pointer, r.json()
    created = await create_endpoint(client, admin)
    r = await client.patch(f"{ENDPOINTS}/{created['id']}", json={"status": "paused"}, headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/status"


async def test_admin_scope_is_required(client):
    tenant, _admin = await tenant_with_key(client, ["admin"])
    sender = bearer(await make_key(client, tenant["id"], ["notifications:send", "notifications:read"]))
    assert (await client.get(ENDPOINTS, headers=sender)).status_code == 403
    r = await client.post(ENDPOINTS, json={"url": PUBLIC_URL, "events": ["message.received"]}, headers=sender)
    assert r.status_code == 403
    assert (await client.get(ENDPOINTS)).status_code == 401


async def test_another_tenants_endpoint_and_delivery_are_404(client):
    tenant_a, admin_a = await tenant_with_key(client, ["admin"])
    _, admin_b = await tenant_with_key(client, ["admin"])
    mine_a = await create_endpoint(client, admin_a)
    delivery_a = await stored_delivery(tenant_a["id"], mine_a["id"])
    mine_b = await create_endpoint(client, admin_b)
    a = f"{ENDPOINTS}/{mine_a['id']}"
    for method, path, body in [
        ("GET", a, None),
        ("PATCH", a, {"status": "disabled"}),
        ("DELETE", a, None),
        ("POST", f"{a}/rotate-secret", None),
        ("GET", f"{a}/deliveries", None),
        ("POST", f"{a}/deliveries/{delivery_a}/resend", None),
        # B's own endpoint with A's delivery id
        ("POST", f"{ENDPOINTS}/{mine_b['id']}/deliveries/{delivery_a}/resend", None),
    ]:
        r = await client.request(method, path, json=body, headers=admin_b)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert set(r.json()) <= {"type", "title", "status", "detail", "instance", "request_id"}
    assert [e["id"] for e in (await client.get(ENDPOINTS, headers=admin_b)).json()["items"]] == [mine_b["id"]]
    # A's endpoint is untouched: same secret, still enabled, its delivery not requeued.
    read = (await client.get(a, headers=admin_a)).json()
    assert read["status"] == "enabled" and read["secret"] == "…" + mine_a["secret"][-4:]
    (d,) = (await client.get(f"{a}/deliveries", headers=admin_a)).json()["items"]
    assert d["id"] == delivery_a and d["status"] == "failed"


async def test_endpoints_page_with_a_cursor(client):
    _, admin = await tenant_with_key(client, ["admin"])
    ids = [(await create_endpoint(client, admin))["id"] for _ in range(3)]
    first = (await client.get(ENDPOINTS, params={"limit": 2}, headers=admin)).json()
    second = (await client.get(ENDPOINTS, params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin)).json()
    assert [e["id"] for e in first["items"] + second["items"]] == list(reversed(ids))
    assert second["next_cursor"] is None
