"""The console's sign-in, cookie and CSRF rules, without a browser."""

from __future__ import annotations

import re
from typing import Any

from tests.factories import OPERATOR, make_key, make_tenant


async def _sign_in(client: Any, key: str) -> Any:
    form = await client.get("/console/sign-in")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    return await client.post("/console/sign-in", data={"csrf": token, "key": key}, follow_redirects=False)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


async def test_session_cookie_flags_and_csrf(client: Any) -> None:
    tenant = await make_tenant(client)
    key = await make_key(client, tenant["id"], ["admin"])
    r = await _sign_in(client, key)
    assert r.status_code == 303 and r.headers["location"] == "/console/notifications"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("ngw_console="))
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "secure" in flags  # NOTIFYGW_ENV=test: not dev
    assert "path=/console" in flags
    assert key not in cookie  # the key itself never goes to the browser

    page = await client.get("/console/api-keys")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    # A changing form without its token, or with another one, is refused and changes nothing.
    for data in ({"name": "x", "scopes": "admin"}, {"name": "x", "scopes": "admin", "csrf": "forged"}):
        r = await client.post("/console/api-keys", data=data)
        assert r.status_code == 403
    keys = await client.get(f"/operator/v1/tenants/{tenant['id']}", headers=OPERATOR)
    assert keys.status_code == 200
    assert "<td>x</td>" not in (await client.get("/console/api-keys")).text
    # With it, the key is made and shown once.
    r = await client.post("/console/api-keys", data={"name": "made", "scopes": "admin", "csrf": _csrf(page.text)})
    assert r.status_code == 200 and re.search(r'id="new-key">ngw_live_', r.text)


async def test_sign_in_refuses_non_admin_and_bad_keys(client: Any) -> None:
    tenant = await make_tenant(client)
    sender = await make_key(client, tenant["id"], ["notifications:send"])
    for key in (sender, "ngw_live_nope", sender[:-3] + "aaa"):
        r = await _sign_in(client, key)
        assert r.status_code == 401 and "ngw_console=" not in r.headers.get("set-cookie", "")
    # The sign-in form itself needs its double-submit token.
    r = await client.post("/console/sign-in", data={"key": sender}, follow_redirects=False)
    assert r.status_code == 403


async def test_sign_out_and_revocation_end_the_session(client: Any) -> None:
    tenant = await make_tenant(client)
    key = await make_key(client, tenant["id"], ["admin"])
    assert (await _sign_in(client, key)).status_code == 303
    stolen = client.cookies.get("ngw_console")
    page = await client.get("/console/api-keys")
    r = await client.post("/console/sign-out", data={"csrf": _csrf(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    # The old cookie, replayed, no longer opens anything: the session is gone on the server.
    client.cookies.set("ngw_console", stolen, path="/console")
    r = await client.get("/console/api-keys", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/sign-in"

    client.cookies.clear()
    assert (await _sign_in(client, key)).status_code == 303
    assert (await client.get("/console/api-keys", follow_redirects=False)).status_code == 200
    key_id = (await client.get("/v1/api-keys", headers={"Authorization": f"Bearer {key}"})).json()["items"][0]["id"]
    r = await client.delete(f"/v1/api-keys/{key_id}", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 204
    r = await client.get("/console/api-keys", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/sign-in"


async def test_another_tenants_notification_is_404_and_text_is_escaped(client: Any) -> None:
    a, b = await make_tenant(client), await make_tenant(client)
    key_a = await make_key(client, a["id"])
    key_b = await make_key(client, b["id"])
    r = await client.post(
        "/v1/notifications",
        json={"to": {"email": "ava@example.com"}, "text": "<script>alert(1)</script>"},
        headers={"Authorization": f"Bearer {key_b}"},
    )
    assert r.status_code == 202
    b_id = r.json()["id"]
    assert (await _sign_in(client, key_b)).status_code == 303
    page = await client.get(f"/console/notifications/{b_id}")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    client.cookies.clear()
    assert (await _sign_in(client, key_a)).status_code == 303
    assert (await client.get(f"/console/notifications/{b_id}")).status_code == 404
    assert (await client.get("/console/notifications/not-a-uuid")).status_code == 404
