"""The environment is part of every scope: a test key neither sees live data nor changes live traffic.

Issue 11, §6. The three attacks that worked (a test key listing and reading live notifications, a
test admin key minting live admin keys and rewriting live routing, a live response replayed to a
test key) are refused here, and a walk of every /v1 route shows what a test admin key may do.
"""

from __future__ import annotations

import re
from typing import Any

from tests.app.endpoints.factories import ALL_EVENTS, PUBLIC_URL
from tests.factories import ALL_SCOPES, bearer, make_key, make_tenant
from tests.tenants.test_isolation import BODIES, FACTORIES
from tests.tenants.test_templates_routing import ORDER_SHIPPED

WRITE = "test keys cannot change live configuration"
READ = "test keys cannot read live data"
PERSON = "+14155550100"
NOTIFY = {
    "to": {"email": "ava@example.com", "phone": "+14155550123"},
    "text": "Your order shipped",
    "metadata": {"order": "18473"},
}


async def live_and_test_keys(client: Any) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    tenant = await make_tenant(client)
    live = bearer(await make_key(client, tenant["id"], ALL_SCOPES))
    test = bearer(await make_key(client, tenant["id"], ALL_SCOPES, environment="test"))
    return tenant, live, test


async def test_a_test_key_neither_lists_nor_reads_live_notifications(client):
    _, live, test = await live_and_test_keys(client)
    live_id = (await client.post("/v1/notifications", json=NOTIFY, headers=live)).json()["id"]
    test_id = (await client.post("/v1/notifications", json=NOTIFY, headers=test)).json()["id"]

    listed = (await client.get("/v1/notifications", headers=test)).json()["items"]
    assert [n["id"] for n in listed] == [test_id]
    assert (await client.get(f"/v1/notifications/{live_id}", headers=test)).status_code == 404
    by_phone = (await client.get("/v1/notifications", params={"to": "+14155550123"}, headers=test)).json()["items"]
    assert [n["id"] for n in by_phone] == [test_id]
    # And the other way round: live keys see live traffic only.
    assert [n["id"] for n in (await client.get("/v1/notifications", headers=live)).json()["items"]] == [live_id]
    assert (await client.get(f"/v1/notifications/{test_id}", headers=live)).status_code == 404


async def test_a_test_key_reads_no_live_personal_data(client):
    _, live, test = await live_and_test_keys(client)
    r = await client.post(
        "/v1/consents",
        headers=live,
        json={"phone": PERSON, "channel": "whatsapp", "status": "granted", "source": "web form"},
    )
    contact_id = r.json()["contact_id"]
    for path, params in (
        ("/v1/contacts", {}),
        (f"/v1/contacts/{contact_id}", {}),
        ("/v1/consents", {"phone": PERSON}),
        ("/v1/suppressions", {}),
        ("/v1/audit-log", {}),
    ):
        r = await client.get(path, params=params, headers=test)
        assert r.status_code == 403 and r.json()["detail"] == READ, (path, r.text)
        assert PERSON not in r.text


async def test_a_test_admin_key_cannot_mint_live_keys_nor_rewrite_live_routing(client):
    _, live, test = await live_and_test_keys(client)
    r = await client.post(
        "/v1/api-keys", json={"name": "escalate", "scopes": ["admin"], "environment": "live"}, headers=test
    )
    assert r.status_code == 403 and r.json()["detail"] == WRITE, r.text
    assert "key" not in r.json()
    r = await client.put("/v1/routing", json={"require_whatsapp_opt_in": False}, headers=test)
    assert r.status_code == 403 and r.json()["detail"] == WRITE, r.text
    assert (await client.get("/v1/routing", headers=live)).json()["require_whatsapp_opt_in"] is True
    live_keys = [
        k for k in (await client.get("/v1/api-keys", headers=live)).json()["items"] if k["environment"] == "live"
    ]
    assert len(live_keys) == 1  # only the one the operator made


async def test_a_test_admin_key_manages_test_keys_only(client):
    _, live, test = await live_and_test_keys(client)
    made = await client.post(
        "/v1/api-keys", json={"name": "ci", "scopes": ["notifications:send"], "environment": "test"}, headers=test
    )
    assert made.status_code == 201 and made.json()["key"].startswith("ngw_test_"), made.text
    assert (await client.delete(f"/v1/api-keys/{made.json()['id']}", headers=test)).status_code == 204
    live_id = next(
        k["id"] for k in (await client.get("/v1/api-keys", headers=live)).json()["items"] if k["environment"] == "live"
    )
    r = await client.delete(f"/v1/api-keys/{live_id}", headers=test)
    assert r.status_code == 403 and r.json()["detail"] == WRITE
    assert (await client.get("/v1/routing", headers=live)).status_code == 200  # the live key still works


async def test_idempotency_keys_are_per_environment(client):
    _, live, test = await live_and_test_keys(client)
    first = await client.post("/v1/notifications", json=NOTIFY, headers={**live, "Idempotency-Key": "order-18473"})
    assert first.status_code == 202
    other = await client.post("/v1/notifications", json=NOTIFY, headers={**test, "Idempotency-Key": "order-18473"})
    assert other.status_code == 202 and "idempotent-replayed" not in other.headers, other.headers
    assert other.json()["id"] != first.json()["id"]
    again = await client.post("/v1/notifications", json=NOTIFY, headers={**test, "Idempotency-Key": "order-18473"})
    assert again.headers["idempotent-replayed"] == "true" and again.json() == other.json()
    live_again = await client.post("/v1/notifications", json=NOTIFY, headers={**live, "Idempotency-Key": "order-18473"})
    assert live_again.json() == first.json()


async def test_a_relabelled_key_is_invalid(client):
    """A live key's secret under an ngw_test_ prefix is no key at all (the prefix names the environment)."""
    from tenants.api_keys.token import _checksum

    tenant = await make_tenant(client)
    live_key = await make_key(client, tenant["id"], ALL_SCOPES)
    body = live_key.rsplit("_", 1)[0].replace("ngw_live_", "ngw_test_", 1)
    r = await client.get("/v1/notifications", headers=bearer(f"{body}_{_checksum(body)}"))
    assert r.status_code == 401


# --- every /v1 route, called with a test admin key ------------------------------------------------

TWILIO = {"account_sid": "AC" + "1" * 32, "auth_token": "2" * 32, "whatsapp_from": "whatsapp:+14155238886"}
# What each write needs to be valid in shape, so that the answer comes from the environment check.
WALK_BODIES: dict[tuple[str, str], Any] = {
    **BODIES,
    ("POST", "/v1/webhook-endpoints"): {"url": PUBLIC_URL, "events": ALL_EVENTS},
    ("POST", "/v1/notifications"): NOTIFY,
    ("POST", "/v1/api-keys"): {"name": "escalate", "scopes": ["admin"], "environment": "live"},
    ("POST", "/v1/consents"): {"phone": PERSON, "channel": "whatsapp", "status": "granted", "source": "web form"},
    ("POST", "/v1/suppressions"): {"phone": PERSON, "channel": "whatsapp", "reason": "asked"},
    ("PUT", "/v1/providers/twilio"): TWILIO,
    ("PUT", "/v1/providers/sendgrid"): {"api_key": "SG.abcdefgh.ijklmnop", "from_email": "a@example.com"},
    ("PUT", "/v1/routing"): {"require_whatsapp_opt_in": False},
    ("POST", "/v1/templates"): {**ORDER_SHIPPED, "key": "another"},
    ("PUT", "/v1/settings/retention"): {"body_days": 7},
}
WALK_PARAMS: dict[tuple[str, str], dict[str, str]] = {("GET", "/v1/consents"): {"phone": PERSON}}
# A test admin key's answer on each route, over tenant A's live objects. 403 is the environment
# refusal (its detail is checked); anything else means the route let the key through.
EXPECTED: dict[tuple[str, str], int] = {
    ("GET", "/v1/notifications"): 200,
    ("POST", "/v1/notifications"): 202,
    ("GET", "/v1/notifications/{notification_id:uuid}"): 404,  # a live notification
    ("GET", "/v1/messages"): 403,  # inbound messages are live personal data
    ("GET", "/v1/usage"): 200,  # counts of its own (test) environment only
    ("GET", "/v1/api-keys"): 200,
    ("GET", "/v1/api-keys/{key_id:uuid}"): 200,
    ("POST", "/v1/api-keys"): 403,  # a live key
    ("DELETE", "/v1/api-keys/{key_id:uuid}"): 403,  # a live key
    ("GET", "/v1/templates"): 200,
    ("GET", "/v1/templates/{template_key:str}"): 200,
    ("POST", "/v1/templates"): 403,
    ("POST", "/v1/templates/sync"): 403,  # a sync changes what live routing sends
    ("PUT", "/v1/templates/{template_key:str}"): 403,
    ("DELETE", "/v1/templates/{template_key:str}"): 403,
    ("GET", "/v1/routing"): 200,
    ("PUT", "/v1/routing"): 403,
    ("GET", "/v1/settings/retention"): 200,
    ("PUT", "/v1/settings/retention"): 403,  # shortening it would delete live data
    ("GET", "/v1/providers/twilio"): 404,  # none stored: read, and found nothing
    ("PUT", "/v1/providers/twilio"): 403,
    ("DELETE", "/v1/providers/twilio"): 403,
    ("GET", "/v1/providers/sendgrid"): 404,
    ("PUT", "/v1/providers/sendgrid"): 403,
    ("DELETE", "/v1/providers/sendgrid"): 403,
    ("GET", "/v1/webhook-endpoints"): 200,
    ("GET", "/v1/webhook-endpoints/{endpoint_id:uuid}"): 200,
    ("POST", "/v1/webhook-endpoints"): 403,
    ("PATCH", "/v1/webhook-endpoints/{endpoint_id:uuid}"): 403,
    ("DELETE", "/v1/webhook-endpoints/{endpoint_id:uuid}"): 403,
    ("POST", "/v1/webhook-endpoints/{endpoint_id:uuid}/rotate-secret"): 403,
    ("GET", "/v1/webhook-endpoints/{endpoint_id:uuid}/deliveries"): 403,  # payloads carry personal data
    ("POST", "/v1/webhook-endpoints/{endpoint_id:uuid}/deliveries/{delivery_id:uuid}/resend"): 403,
    ("GET", "/v1/contacts"): 403,
    ("GET", "/v1/contacts/{contact_id:uuid}"): 403,
    ("DELETE", "/v1/contacts/{contact_id:uuid}"): 403,
    ("GET", "/v1/consents"): 403,
    ("POST", "/v1/consents"): 403,
    ("GET", "/v1/suppressions"): 403,
    ("POST", "/v1/suppressions"): 403,
    ("GET", "/v1/suppressions/{suppression_id:uuid}"): 403,
    ("DELETE", "/v1/suppressions/{suppression_id:uuid}"): 403,
    ("GET", "/v1/audit-log"): 403,
}


def v1_routes(app: Any) -> list[tuple[str, str]]:
    return [
        (method, route.path)
        for route in app.routes
        if route.path.startswith("/v1/")
        for method in sorted(getattr(route, "methods", ()))
        if method not in ("HEAD", "OPTIONS")
    ]


async def test_every_route_with_a_test_admin_key(app, client):
    tenant, live, test = await live_and_test_keys(client)
    routes = v1_routes(app)
    missing = sorted(set(routes) - set(EXPECTED))
    assert not missing, f"decide what a test key may do on {missing} (README, API keys) and add it to EXPECTED"

    for method, template in routes:
        params: dict[str, str] = {}
        for name in re.findall(r"{(\w+)(?::\w+)?}", template):
            params.update(await FACTORIES[name](client, tenant["id"], live))
        path = re.sub(r"{(\w+)(?::\w+)?}", lambda m: params[m.group(1)], template)
        r = await client.request(
            method,
            path,
            headers=test,
            json=WALK_BODIES.get((method, template)),
            params=WALK_PARAMS.get((method, template)),
        )
        expected = EXPECTED[(method, template)]
        assert r.status_code == expected, (method, template, r.status_code, r.text)
        if expected == 403:
            assert r.json()["detail"] == (READ if method == "GET" else WRITE), (method, template, r.text)
        elif method == "GET" and r.status_code == 200:
            assert PERSON not in r.text, (template, "a test key read a live person")

    # Nothing live was changed: the live admin key still sees A's objects as the factories made them.
    assert (await client.get("/v1/routing", headers=live)).json()["require_whatsapp_opt_in"] is True
    assert (await client.get(f"/v1/templates/{ORDER_SHIPPED['key']}", headers=live)).status_code == 200
    assert (await client.get("/v1/templates/another", headers=live)).status_code == 404
    assert all(k["revoked_at"] is None for k in (await client.get("/v1/api-keys", headers=live)).json()["items"])
    assert all(
        e["status"] == "enabled" for e in (await client.get("/v1/webhook-endpoints", headers=live)).json()["items"]
    )
    assert (await client.get("/v1/suppressions", headers=live)).json()["items"]
    contacts = (await client.get("/v1/contacts", headers=live)).json()["items"]
    assert contacts and all(c["erased_at"] is None for c in contacts)
