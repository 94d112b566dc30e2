from __future__ import annotations

import uuid

import pytest

from app.core.errors import Forbidden
from tenants.auth import OPERATOR as OPERATOR_PRINCIPAL
from tests.factories import OPERATOR, bearer, make_key, make_tenant, tenant_with_key


async def test_create_read_list_tenants(client):
    created = await make_tenant(client, "Acme Ltd")
    assert created["status"] == "active" and created["slug"].startswith("acme-ltd")
    assert set(created) >= {"id", "name", "slug", "status", "created_at"}
    r = await client.get(f"/operator/v1/tenants/{created['id']}", headers=OPERATOR)
    assert r.status_code == 200 and r.json()["name"] == "Acme Ltd"


async def test_list_is_cursor_paginated(client):
    ids = {(await make_tenant(client))["id"] for _ in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/operator/v1/tenants", params=params, headers=OPERATOR)).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert set(seen) == ids and len(seen) == len(ids)


async def test_slug_conflict_is_409(client):
    body = {"name": "A", "slug": "same-slug"}
    assert (await client.post("/operator/v1/tenants", json=body, headers=OPERATOR)).status_code == 201
    r = await client.post("/operator/v1/tenants", json=body, headers=OPERATOR)
    assert r.status_code == 409 and r.json()["errors"][0]["pointer"] == "/slug"


async def test_operator_auth(client):
    assert (await client.get("/operator/v1/tenants")).status_code == 401
    r = await client.get("/operator/v1/tenants", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    # A tenant key is not an operator token.
    _, headers = await tenant_with_key(client)
    assert (await client.get("/operator/v1/tenants", headers=headers)).status_code == 401


async def test_unknown_tenant_is_404(client):
    r = await client.get(f"/operator/v1/tenants/{uuid.uuid4()}", headers=OPERATOR)
    assert r.status_code == 404
    r = await client.post(
        f"/operator/v1/tenants/{uuid.uuid4()}/api-keys", json={"name": "x", "scopes": ["admin"]}, headers=OPERATOR
    )
    assert r.status_code == 404


async def test_suspended_tenant_keys_get_403(client):
    tenant, headers = await tenant_with_key(client)
    assert (await client.get("/v1/api-keys", headers=headers)).status_code == 200
    r = await client.patch(f"/operator/v1/tenants/{tenant['id']}", json={"status": "suspended"}, headers=OPERATOR)
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    r = await client.get("/v1/api-keys", headers=headers)
    assert r.status_code == 403 and r.json()["title"] == "Tenant suspended"
    await client.patch(f"/operator/v1/tenants/{tenant['id']}", json={"status": "active"}, headers=OPERATOR)
    assert (await client.get("/v1/api-keys", headers=headers)).status_code == 200


async def test_bad_operator_input_is_4xx_problem(client):
    cases = [
        {"name": ""},
        {"name": 5},
        {"name": "x", "unknown": 1},
        {"name": "x", "slug": "Not A Slug"},
        {},
    ]
    for body in cases:
        r = await client.post("/operator/v1/tenants", json=body, headers=OPERATOR)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["errors"][0]["pointer"].startswith("/")
    r = await client.post(
        "/operator/v1/tenants", content=b"{nope", headers={**OPERATOR, "Content-Type": "application/json"}
    )
    assert r.status_code == 400
    r = await client.post(
        "/operator/v1/tenants",
        content=b"[" + b"1," * 40_000 + b"1]",
        headers={**OPERATOR, "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.headers["content-type"].startswith("application/problem+json")
    tenant = await make_tenant(client)
    r = await client.patch(f"/operator/v1/tenants/{tenant['id']}", json={"status": "deleted"}, headers=OPERATOR)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/status"
    r = await client.post(
        f"/operator/v1/tenants/{tenant['id']}/api-keys", json={"name": "k", "scopes": ["root"]}, headers=OPERATOR
    )
    assert r.status_code == 422


async def test_operator_changes_are_audited(client):
    tenant = await make_tenant(client)
    key = await make_key(client, tenant["id"], ["admin"])
    await client.patch(f"/operator/v1/tenants/{tenant['id']}", json={"api_rate_per_second": 20}, headers=OPERATOR)
    log = (await client.get("/v1/audit-log", headers=bearer(key))).json()["items"]
    actions = [e["action"] for e in log]
    assert actions == ["tenant.updated", "api_key.created", "tenant.created"]
    update = log[0]
    assert update["actor_type"] == "operator"
    assert update["before"]["api_rate_per_second"] is None and update["after"]["api_rate_per_second"] == 20
    assert update["request_id"]


async def test_per_tenant_rate_limit_is_429_with_retry_after(client):
    tenant, headers = await tenant_with_key(client)
    _other, other_headers = await tenant_with_key(client)
    r = await client.patch(f"/operator/v1/tenants/{tenant['id']}", json={"api_rate_per_second": 1}, headers=OPERATOR)
    assert r.status_code == 200
    codes = [(await client.get("/v1/api-keys", headers=headers)) for _ in range(6)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited, [r.status_code for r in codes]
    assert int(limited[0].headers["retry-after"]) >= 1
    assert limited[0].headers["content-type"].startswith("application/problem+json")
    # Another tenant is not affected.
    assert (await client.get("/v1/api-keys", headers=other_headers)).status_code == 200


async def test_patch_with_null_rate_brings_back_the_default(client):
    tenant, headers = await tenant_with_key(client)
    url = f"/operator/v1/tenants/{tenant['id']}"
    assert (await client.patch(url, json={"api_rate_per_second": 1}, headers=OPERATOR)).json()[
        "api_rate_per_second"
    ] == 1
    # Leaving the field out changes nothing...
    assert (await client.patch(url, json={"status": "active"}, headers=OPERATOR)).json()["api_rate_per_second"] == 1
    # ...null means "the platform default" again: requests beyond 1/s are no longer refused.
    r = await client.patch(url, json={"api_rate_per_second": None}, headers=OPERATOR)
    assert r.status_code == 200 and r.json()["api_rate_per_second"] is None
    codes = [(await client.get("/v1/api-keys", headers=headers)).status_code for _ in range(6)]
    assert codes == [200] * 6


def test_the_operator_has_no_tenant_to_scope_by():
    # A real error, not an assert that `python -O` strips: with it gone, tenant_id None would reach
    # every scoped query as `tenant_id IS NULL`.
    with pytest.raises(Forbidden):
        _ = OPERATOR_PRINCIPAL.tenant
