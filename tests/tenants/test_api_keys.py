from __future__ import annotations

import uuid

from sqlalchemy import event
from sqlalchemy.engine import Engine

from tenants.api_keys.token import new_key, parse_key
from tests.factories import bearer, make_key, tenant_with_key


def test_key_format_and_checksum():
    full, parsed = new_key("live")
    assert full.startswith(f"ngw_live_{parsed.public_id}_")
    assert len(parsed.secret) == 64  # 32 random bytes
    assert parse_key(full) == parsed
    # Any single-character change breaks the checksum or the shape.
    for i in range(len("ngw_live_"), len(full)):
        flipped = full[:i] + ("0" if full[i] != "0" else "1") + full[i + 1 :]
        assert parse_key(flipped) is None, i
    assert parse_key(full + " ") is None
    assert parse_key("ngw_prod_" + full[9:]) is None


async def test_broken_checksum_is_401_without_a_query(client):
    _, headers = await tenant_with_key(client)
    key = headers["Authorization"].removeprefix("Bearer ")
    forged = key[:-1] + ("a" if key[-1] != "a" else "b")
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        if "api_keys" in statement:  # other tests' background work may share the engine
            statements.append(statement)

    # On the Engine class: the app under test runs on its own loop, with its own engine.
    event.listen(Engine, "before_cursor_execute", count)
    try:
        r = await client.get("/v1/api-keys", headers=bearer(forged))
        assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
        assert statements == []
        r = await client.get("/v1/api-keys", headers=bearer(key))  # the listener does see a real lookup
        assert r.status_code == 200 and statements
    finally:
        event.remove(Engine, "before_cursor_execute", count)


async def test_unknown_and_missing_keys_are_401(client):
    full, _ = new_key("live")  # well-formed, never issued
    assert (await client.get("/v1/api-keys", headers=bearer(full))).status_code == 401
    assert (await client.get("/v1/api-keys")).status_code == 401
    assert (await client.get("/v1/api-keys", headers={"Authorization": "Basic abc"})).status_code == 401


async def test_scope_is_enforced_with_403(client):
    tenant, _ = await tenant_with_key(client)
    sender = await make_key(client, tenant["id"], ["notifications:send"])
    r = await client.get("/v1/api-keys", headers=bearer(sender))
    assert r.status_code == 403 and "admin" in r.json()["detail"]


async def test_admin_manages_keys_and_revocation_is_immediate(client):
    _, admin = await tenant_with_key(client, ["admin"])
    r = await client.post("/v1/api-keys", json={"name": "ci", "scopes": ["notifications:send"]}, headers=admin)
    assert r.status_code == 201
    created = r.json()
    assert created["key"].startswith(created["prefix"] + "_")
    listed = (await client.get("/v1/api-keys", headers=admin)).json()["items"]
    assert {k["id"] for k in listed} >= {created["id"]}
    assert all("key" not in k for k in listed)

    other = await client.post("/v1/api-keys", json={"name": "admin2", "scopes": ["admin"]}, headers=admin)
    second = other.json()
    assert (await client.get("/v1/api-keys", headers=bearer(second["key"]))).status_code == 200
    assert (await client.delete(f"/v1/api-keys/{second['id']}", headers=admin)).status_code == 204
    assert (await client.get("/v1/api-keys", headers=bearer(second["key"]))).status_code == 401
    revoked = (await client.get(f"/v1/api-keys/{second['id']}", headers=admin)).json()
    assert revoked["revoked_at"] is not None
    assert (await client.delete(f"/v1/api-keys/{uuid.uuid4()}", headers=admin)).status_code == 404


async def test_last_used_at_is_recorded_without_a_write_per_request(client):
    from tenants.auth import key_cache

    tenant, admin = await tenant_with_key(client, ["admin"])
    for _ in range(3):
        assert (await client.get("/v1/api-keys", headers=admin)).status_code == 200
    key_id = (await client.get("/v1/api-keys", headers=admin)).json()["items"][0]["id"]
    assert uuid.UUID(key_id) in key_cache.last_used
    # The next cache refill writes it.
    key_cache.invalidate(tenant_id=uuid.UUID(tenant["id"]))
    await client.get("/v1/api-keys", headers=admin)
    key_cache.invalidate(tenant_id=uuid.UUID(tenant["id"]))
    items = (await client.get("/v1/api-keys", headers=admin)).json()["items"]
    assert items[0]["last_used_at"] is not None


async def test_a_key_cached_while_its_revocation_was_uncommitted_is_dropped_at_commit(client):
    """A request that reloads the key between the revocation's flush and its commit reads the row as it
    was (not yet revoked) and caches it; the commit must clear that entry, or this process would keep
    accepting the revoked key for up to KEY_CACHE_TTL."""
    from dataclasses import replace

    from app.core.db import session_factory
    from tenants.api_keys.service import revoke_key
    from tenants.auth import OPERATOR, key_cache

    tenant, admin = await tenant_with_key(client, ["admin"])
    assert (await client.get("/v1/api-keys", headers=admin)).status_code == 200
    public_id = parse_key(admin["Authorization"].removeprefix("Bearer ")).public_id
    live = key_cache.get(public_id)
    assert live is not None and not live.revoked
    async with session_factory()() as session:
        await revoke_key(session, uuid.UUID(tenant["id"]), live.key_id, actor=OPERATOR)
        key_cache.put(public_id, replace(live))  # what a concurrent reader caches before the commit
        await session.commit()
    assert key_cache.get(public_id) is None
    assert (await client.get("/v1/api-keys", headers=admin)).status_code == 401


async def test_a_tenant_cached_while_its_suspension_was_uncommitted_is_dropped_at_commit(client):
    from dataclasses import replace

    from app.core.db import session_factory
    from tenants.accounts.models import Tenant
    from tenants.accounts.service import update_tenant
    from tenants.auth import OPERATOR, key_cache

    tenant, admin = await tenant_with_key(client, ["admin"])
    assert (await client.get("/v1/api-keys", headers=admin)).status_code == 200
    public_id = parse_key(admin["Authorization"].removeprefix("Bearer ")).public_id
    live = key_cache.get(public_id)
    assert live is not None and live.tenant_status == "active"
    async with session_factory()() as session:
        row = await session.get(Tenant, uuid.UUID(tenant["id"]))
        await update_tenant(session, row, {"status": "suspended"}, actor=OPERATOR)
        key_cache.put(public_id, replace(live))
        await session.commit()
    assert key_cache.get(public_id) is None
    r = await client.get("/v1/api-keys", headers=admin)
    assert r.status_code == 403 and r.json()["type"].endswith("tenant-suspended")
