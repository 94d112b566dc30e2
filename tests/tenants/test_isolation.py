"""Every /v1 route that takes an id, called with tenant B's key on tenant A's object: 404, no data.

The test enumerates the app's routes, so a new route with an id fails here until it has a case.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from tests.app.endpoints.factories import ISOLATION_BODIES, ISOLATION_FACTORIES
from tests.factories import ALL_SCOPES, bearer, make_key, make_tenant
from tests.tenants.test_templates_routing import ORDER_SHIPPED

# Builds tenant A's object and returns the path parameters naming it.
Factory = Callable[[Any, str, dict[str, str]], Awaitable[dict[str, str]]]


async def _api_key(client: Any, tenant_id: str, headers: dict[str, str]) -> dict[str, str]:
    r = await client.post("/v1/api-keys", json={"name": "victim", "scopes": ["admin"]}, headers=headers)
    return {"key_id": r.json()["id"]}


async def _template(client: Any, tenant_id: str, headers: dict[str, str]) -> dict[str, str]:
    await client.post("/v1/templates", json=ORDER_SHIPPED, headers=headers)
    return {"template_key": ORDER_SHIPPED["key"]}


async def _suppression(client: Any, tenant_id: str, headers: dict[str, str]) -> dict[str, str]:
    r = await client.post(
        "/v1/suppressions", json={"phone": "+14155550100", "channel": "whatsapp", "reason": "x"}, headers=headers
    )
    return {"suppression_id": r.json()["id"]}


async def _notification(client: Any, tenant_id: str, headers: dict[str, str]) -> dict[str, str]:
    r = await client.post("/v1/notifications", json={"to": {"email": "a@example.com"}, "text": "hi"}, headers=headers)
    return {"notification_id": r.json()["id"]}


FACTORIES: dict[str, Factory] = {
    "key_id": _api_key,
    "template_key": _template,
    "suppression_id": _suppression,
    "notification_id": _notification,
}


async def _contact(client: Any, tenant_id: str, headers: dict[str, str]) -> dict[str, str]:
    r = await client.post(
        "/v1/consents",
        headers=headers,
        json={"phone": "+14155550100", "channel": "whatsapp", "status": "granted", "source": "test"},
    )
    return {"contact_id": r.json()["contact_id"]}


FACTORIES["contact_id"] = _contact
FACTORIES.update(ISOLATION_FACTORIES)  # endpoint_id, delivery_id
# Bodies that are valid in shape, so the request reaches the lookup rather than stopping at 422.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PUT", "/v1/templates/{template_key:str}"): {k: v for k, v in ORDER_SHIPPED.items() if k != "key"},
    **ISOLATION_BODIES,
}


def id_routes(app: Any) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        if not route.path.startswith("/v1/") or "{" not in route.path:
            continue
        for method in sorted(getattr(route, "methods", ())):
            if method not in ("HEAD", "OPTIONS"):
                found.append((method, route.path))
    return found


async def test_every_id_route_hides_other_tenants_objects(app, client):
    tenant_a = await make_tenant(client)
    admin_a = bearer(await make_key(client, tenant_a["id"], ALL_SCOPES))
    tenant_b = await make_tenant(client)
    admin_b = bearer(await make_key(client, tenant_b["id"], ALL_SCOPES))

    routes = id_routes(app)
    assert routes, "no id routes found"
    for method, template in routes:
        names = re.findall(r"{(\w+)(?::\w+)?}", template)
        missing = [n for n in names if n not in FACTORIES]
        assert not missing, f"{method} {template}: add an isolation factory for {missing}"
        params: dict[str, str] = {}
        for name in names:
            params.update(await FACTORIES[name](client, tenant_a["id"], admin_a))
        path = re.sub(r"{(\w+)(?::\w+)?}", lambda m: params[m.group(1)], template)
        r = await client.request(method, path, headers=admin_b, json=BODIES.get((method, template)))
        assert r.status_code == 404, (method, template, r.status_code, r.text)
        body = r.json()
        assert set(body) <= {"type", "title", "status", "detail", "instance", "request_id"}, body
        # And tenant A's object is untouched and still visible to A.
        if method == "GET":
            assert (await client.get(path, headers=admin_a)).status_code == 200, (template, "A lost its object")


async def test_other_tenants_key_cannot_be_revoked(client):
    tenant_a = await make_tenant(client)
    key_a = await make_key(client, tenant_a["id"], ["admin"])
    tenant_b = await make_tenant(client)
    admin_b = bearer(await make_key(client, tenant_b["id"], ["admin"]))
    key_id = (await client.get("/v1/api-keys", headers=bearer(key_a))).json()["items"][0]["id"]
    assert (await client.delete(f"/v1/api-keys/{key_id}", headers=admin_b)).status_code == 404
    assert (await client.get("/v1/api-keys", headers=bearer(key_a))).status_code == 200
