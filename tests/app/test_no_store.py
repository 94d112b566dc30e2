"""Every response that carries a new key or secret says Cache-Control: no-store (issue 11, §12).

A shared cache or a proxy on the way must never keep a full API key or a webhook signing secret.
"""

from __future__ import annotations

from typing import Any

import msgspec

from tests.app.endpoints.factories import ALL_EVENTS, PUBLIC_URL
from tests.factories import OPERATOR, bearer, make_tenant


def no_store(response: Any) -> bool:
    return "no-store" in response.headers.get("cache-control", "")


async def test_new_keys_and_secrets_are_never_stored_by_caches(client):
    tenant = await make_tenant(client)
    r = await client.post(
        f"/operator/v1/tenants/{tenant['id']}/api-keys", headers=OPERATOR, json={"name": "admin", "scopes": ["admin"]}
    )
    assert r.status_code == 201 and no_store(r), r.headers
    admin = bearer(r.json()["key"])
    r = await client.post("/v1/api-keys", headers=admin, json={"name": "sender", "scopes": ["notifications:send"]})
    assert r.status_code == 201 and no_store(r), r.headers
    r = await client.post("/v1/webhook-endpoints", headers=admin, json={"url": PUBLIC_URL, "events": ALL_EVENTS})
    assert r.status_code == 201 and r.json()["secret"] and no_store(r), r.headers
    r = await client.post(f"/v1/webhook-endpoints/{r.json()['id']}/rotate-secret", headers=admin)
    assert r.status_code == 200 and r.json()["secret"] and no_store(r), r.headers


def test_the_dev_emulator_credentials_are_never_stored_by_caches(emulator):
    """The emulator is mounted in `notifygw dev`: its accounts and keys are fake, but shaped like real ones."""
    r = emulator.http.post("/_emulator/twilio/accounts", json={})
    assert r.status_code == 201 and r.json()["auth_token"] and no_store(r), r.headers
    r = emulator.http.post("/_emulator/sendgrid/keys", json={})
    assert r.status_code == 201 and r.json()["api_key"] and no_store(r), r.headers


def test_every_route_answering_with_a_secret_field_is_no_store(app):
    """The structs that carry a full key or secret are the `...Created` ones (ApiKeyCreated, EndpointCreated):
    a new route answering with one fails here until it says no-store."""
    found = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            returned = handler.parsed_fn_signature.return_type.annotation
            if (
                isinstance(returned, type)
                and issubclass(returned, msgspec.Struct)
                and returned.__name__.endswith("Created")
            ):
                found.append(handler)
                headers = {h.name.lower(): h.value for h in handler.resolve_response_headers()}
                assert "no-store" in (headers.get("cache-control") or ""), (route.path, returned.__name__)
    assert len(found) >= 4, [h.paths for h in found]  # operator and tenant key creation, endpoint create and rotate
