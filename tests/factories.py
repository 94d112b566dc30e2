"""Small helpers that build test data through the public API, as a client would."""

from __future__ import annotations

import secrets
from typing import Any

from tests.conftest import OPERATOR_TOKEN

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
ALL_SCOPES = ["admin", "notifications:send", "notifications:read"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def make_tenant(client: Any, name: str | None = None) -> dict[str, Any]:
    r = await client.post(
        "/operator/v1/tenants", json={"name": name or f"Tenant {secrets.token_hex(3)}"}, headers=OPERATOR
    )
    assert r.status_code == 201, r.text
    return r.json()


async def make_key(client: Any, tenant_id: str, scopes: list[str] | None = None, environment: str = "live") -> str:
    r = await client.post(
        f"/operator/v1/tenants/{tenant_id}/api-keys",
        json={"name": "test", "scopes": scopes or ALL_SCOPES, "environment": environment},
        headers=OPERATOR,
    )
    assert r.status_code == 201, r.text
    return r.json()["key"]


async def tenant_with_key(client: Any, scopes: list[str] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    tenant = await make_tenant(client)
    return tenant, bearer(await make_key(client, tenant["id"], scopes))
