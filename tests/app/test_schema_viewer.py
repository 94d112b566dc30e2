"""/schema works offline: the viewer's page names no other host, and every asset it names is served here.

Issue 11, §12: the viewer loaded its JavaScript and CSS from a CDN, so it was blank offline.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit


async def test_schema_viewer_loads_nothing_from_another_host(client):
    page = await client.get("/schema")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text[:300]
    head = page.text.split("SwaggerUIBundle({", 1)[0]  # the markup before the inline spec (whose URLs are data)
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", head)
    assert assets
    for asset in assets:
        parts = urlsplit(asset)
        assert not parts.scheme and not parts.netloc, f"{asset} is loaded from another host"
    assert {a.rsplit("/", 1)[-1] for a in assets} >= {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-ui-standalone-preset.js",
    }, assets
    for asset in assets:
        r = await client.get(asset)
        assert r.status_code == 200 and r.content, (asset, r.status_code)
    assert "@import" not in (await client.get(next(a for a in assets if a.endswith(".css")))).text
    js = await client.get(next(a for a in assets if a.endswith("swagger-ui-bundle.js")))
    assert "javascript" in js.headers["content-type"]
    assert (await client.get("/schema/openapi.json")).status_code == 200
