"""The webhook-endpoint id routes through the same walk as tests/tenants/test_isolation.py, with the
factories offered for it (tests/app/endpoints/factories.py): B's key on A's objects is 404, no data."""

from __future__ import annotations

import re

from tests.app.endpoints.factories import ISOLATION_BODIES, ISOLATION_FACTORIES
from tests.factories import ALL_SCOPES, bearer, make_key, make_tenant
from tests.tenants.test_isolation import id_routes


async def test_webhook_endpoint_routes_hide_other_tenants_objects(app, client):
    tenant_a = await make_tenant(client)
    admin_a = bearer(await make_key(client, tenant_a["id"], ALL_SCOPES))
    tenant_b = await make_tenant(client)
    admin_b = bearer(await make_key(client, tenant_b["id"], ALL_SCOPES))

    routes = [(m, t) for m, t in id_routes(app) if t.startswith("/v1/webhook-endpoints/")]
    assert len(routes) == 6, routes
    for method, template in routes:
        names = re.findall(r"{(\w+)(?::\w+)?}", template)
        params: dict[str, str] = {}
        for name in names:
            params.update(await ISOLATION_FACTORIES[name](client, tenant_a["id"], admin_a))
        path = re.sub(r"{(\w+)(?::\w+)?}", lambda m: params[m.group(1)], template)
        r = await client.request(method, path, headers=admin_b, json=ISOLATION_BODIES.get((method, template)))
        assert r.status_code == 404, (method, template, r.status_code, r.text)
        assert set(r.json()) <= {"type", "title", "status", "detail", "instance", "request_id"}, r.json()
        if method == "GET":
            assert (await client.get(path, headers=admin_a)).status_code == 200, (template, "A lost its object")
        elif method == "PATCH":  # the body is valid in shape: the 404 above came from the lookup, not validation
            r = await client.request(method, path, headers=admin_a, json=ISOLATION_BODIES[(method, template)])
            assert r.status_code == 200, r.text
