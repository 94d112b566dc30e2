"""Per-tenant quotas on webhook endpoints, templates and contacts (issue 11, section 10)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from app.core.db import session_factory
from tenants.accounts import quotas
from tenants.contacts.models import Contact
from tests.app.endpoints.factories import ENDPOINTS, PUBLIC_URL, create_endpoint
from tests.app.webhooks.test_twilio_webhooks import post_signed
from tests.factories import OPERATOR, tenant_with_key
from tests.support.gateway import settle, wired_tenant
from tests.tenants.test_templates_routing import ORDER_SHIPPED


def assert_quota_problem(r, quota: str, limit: int) -> None:
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"].endswith("/quota-exceeded")
    assert body["quota"] == quota and body["limit"] == limit


async def set_quota(client, tenant_id: str, **values) -> dict:
    r = await client.patch(f"/operator/v1/tenants/{tenant_id}", json=values, headers=OPERATOR)
    assert r.status_code == 200, r.text
    return r.json()


async def test_webhook_endpoints_are_capped_by_the_default_quota(client):
    tenant, headers = await tenant_with_key(client)
    assert tenant["quotas"]["webhook_endpoints"] == quotas.DEFAULTS["webhook_endpoints"]
    for n in range(quotas.DEFAULTS["webhook_endpoints"]):
        await create_endpoint(client, headers, url=f"{PUBLIC_URL}/{n}")
    r = await client.post(
        ENDPOINTS, json={"url": f"{PUBLIC_URL}/one-too-many", "events": ["message.received"]}, headers=headers
    )
    assert_quota_problem(r, "webhook_endpoints", quotas.DEFAULTS["webhook_endpoints"])


async def test_operator_lowers_and_restores_the_endpoint_quota(client):
    tenant, headers = await tenant_with_key(client)
    _other, other_headers = await tenant_with_key(client)
    out = await set_quota(client, tenant["id"], max_webhook_endpoints=1)
    assert out["max_webhook_endpoints"] == 1 and out["quotas"]["webhook_endpoints"] == 1
    await create_endpoint(client, headers)
    r = await client.post(ENDPOINTS, json={"url": PUBLIC_URL + "/2", "events": ["message.received"]}, headers=headers)
    assert_quota_problem(r, "webhook_endpoints", 1)
    await create_endpoint(client, other_headers)  # another tenant's quota is its own
    # A deleted endpoint frees its place.
    first = (await client.get(ENDPOINTS, headers=headers)).json()["items"][0]["id"]
    assert (await client.delete(f"{ENDPOINTS}/{first}", headers=headers)).status_code == 204
    await create_endpoint(client, headers, url=PUBLIC_URL + "/3")
    # null brings back the default.
    out = await set_quota(client, tenant["id"], max_webhook_endpoints=None)
    assert out["max_webhook_endpoints"] is None
    assert out["quotas"]["webhook_endpoints"] == quotas.DEFAULTS["webhook_endpoints"]
    await create_endpoint(client, headers, url=PUBLIC_URL + "/4")


async def test_templates_are_capped(client):
    tenant, headers = await tenant_with_key(client)
    await set_quota(client, tenant["id"], max_templates=1)
    assert (await client.post("/v1/templates", json=ORDER_SHIPPED, headers=headers)).status_code == 201
    r = await client.post("/v1/templates", json={**ORDER_SHIPPED, "key": "second"}, headers=headers)
    assert_quota_problem(r, "templates", 1)
    # Replacing a template it holds is not a new one.
    body = {k: v for k, v in ORDER_SHIPPED.items() if k != "key"}
    assert (await client.put(f"/v1/templates/{ORDER_SHIPPED['key']}", json=body, headers=headers)).status_code == 200


async def contacts_of(tenant_id: str) -> int:
    async with session_factory()() as s:
        return (
            await s.execute(select(func.count()).select_from(Contact).where(Contact.tenant_id == uuid.UUID(tenant_id)))
        ).scalar_one()


async def test_a_notification_to_a_new_person_over_the_contacts_quota_is_refused(client):
    tenant, headers = await tenant_with_key(client)
    await set_quota(client, tenant["id"], max_contacts=2)
    for n in (1, 2):
        r = await client.post(
            "/v1/notifications", json={"to": {"phone": f"+1415555010{n}"}, "text": "hi"}, headers=headers
        )
        assert r.status_code == 202, r.text
    r = await client.post("/v1/notifications", json={"to": {"phone": "+14155550103"}, "text": "hi"}, headers=headers)
    assert_quota_problem(r, "contacts", 2)
    # A person it already holds is still reachable, and a consent for a new person is refused alike.
    r = await client.post("/v1/notifications", json={"to": {"phone": "+14155550101"}, "text": "again"}, headers=headers)
    assert r.status_code == 202, r.text
    r = await client.post(
        "/v1/consents",
        headers=headers,
        json={"phone": "+14155550104", "channel": "whatsapp", "status": "granted", "source": "form"},
    )
    assert_quota_problem(r, "contacts", 2)
    assert await contacts_of(tenant["id"]) == 2
    # Raising the quota is seen at once (the cached count is dropped).
    await set_quota(client, tenant["id"], max_contacts=3)
    r = await client.post("/v1/notifications", json={"to": {"phone": "+14155550103"}, "text": "hi"}, headers=headers)
    assert r.status_code == 202, r.text


async def test_an_inbound_message_from_a_new_person_is_never_lost_to_the_quota(client, emulator, gateway, worker):
    wired = await wired_tenant(client, emulator, gateway)
    await set_quota(client, wired.id, max_contacts=1)
    r = await client.post(
        "/v1/notifications", json={"to": {"phone": "+14155550111"}, "text": "hi"}, headers=wired.admin
    )
    assert r.status_code == 202
    await settle(emulator)
    pairs = [
        ("AccountSid", wired.account["account_sid"]),
        ("MessageSid", "SM" + "7" * 32),
        ("From", "whatsapp:+14155550112"),
        ("To", wired.account["whatsapp_from"]),
        ("Body", "hello"),
        ("NumMedia", "0"),
    ]
    r = await post_signed(client, "/webhooks/twilio/inbound", pairs, wired.account["auth_token"])
    assert r.status_code == 200
    await settle(emulator)
    async with session_factory()() as s:
        from app.webhooks.models import InboundMessage

        msg = (
            await s.execute(select(InboundMessage).where(InboundMessage.tenant_id == uuid.UUID(wired.id)))
        ).scalar_one()
        assert msg.body == "hello" and msg.contact_id is not None
    assert await contacts_of(wired.id) == 2  # over the quota: an inbound person is always stored


@pytest.mark.parametrize(
    "field,value", [("max_templates", -1), ("max_contacts", "many"), ("max_webhook_endpoints", 1.5)]
)
async def test_quota_values_are_validated(client, field, value):
    tenant, _ = await tenant_with_key(client)
    r = await client.patch(f"/operator/v1/tenants/{tenant['id']}", json={field: value}, headers=OPERATOR)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == f"/{field}"


def test_the_cli_sets_and_resets_quotas():
    import json

    from click.testing import CliRunner

    from app.cli import main

    runner = CliRunner()
    created = runner.invoke(main, ["tenants", "create", "Quota CLI", "--slug", "quota-cli"])
    assert created.exit_code == 0, created.output
    out = runner.invoke(main, ["tenants", "update", "quota-cli", "--max-templates", "3", "--api-rate", "7"])
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)
    assert shown["max_templates"] == 3 and shown["quotas"]["templates"] == 3 and shown["api_rate_per_second"] == 7
    out = runner.invoke(main, ["tenants", "update", "quota-cli", "--max-templates", "default"])
    shown = json.loads(out.output)
    assert shown["max_templates"] is None and shown["api_rate_per_second"] == 7  # only what was named changed
    assert runner.invoke(main, ["tenants", "update", "quota-cli", "--max-contacts", "-5"]).exit_code != 0
