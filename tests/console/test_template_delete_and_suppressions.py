"""The console's last two /v1 admin actions without a browser: deleting a template (as DELETE
/v1/templates/{key}) and the tenant-wide suppressions list with Lift (as GET and DELETE
/v1/suppressions). Each checked through the API; another tenant's key or id is 404; a form without its
CSRF token is 403 and changes nothing."""

from __future__ import annotations

import re
from typing import Any

from tests.console.test_session import _csrf, _sign_in
from tests.factories import bearer, make_key, make_tenant
from tests.tenants.test_templates_routing import ORDER_SHIPPED


async def _suppress(client: Any, admin: dict[str, str], **person: str) -> dict[str, Any]:
    channel = "email" if "email" in person else "whatsapp"
    r = await client.post("/v1/suppressions", json={**person, "channel": channel, "reason": "asked"}, headers=admin)
    assert r.status_code == 201, r.text
    return r.json()


async def test_deleting_a_template_from_its_page(client: Any) -> None:
    b = await make_tenant(client)
    theirs = bearer(await make_key(client, b["id"], ["admin"]))
    assert (
        await client.post("/v1/templates", json={**ORDER_SHIPPED, "key": "their_tpl"}, headers=theirs)
    ).status_code == 201
    a = await make_tenant(client)
    key = await make_key(client, a["id"], ["admin"])
    admin = bearer(key)
    assert (await client.post("/v1/templates", json=ORDER_SHIPPED, headers=admin)).status_code == 201
    assert (await _sign_in(client, key)).status_code == 303
    page = await client.get("/console/templates/order_shipped")
    assert page.status_code == 200
    form = re.search(r'<form[^>]*action="/console/templates/order_shipped/delete"[^>]*>', page.text)
    assert form and "data-confirm=" in form.group(0)  # asks first, as API-key revoke does
    csrf = _csrf(page.text)

    # Without its CSRF token (or with a forged one): 403, the template is still there.
    for token in ({}, {"csrf": "forged"}):
        r = await client.post("/console/templates/order_shipped/delete", data=token, follow_redirects=False)
        assert r.status_code == 403
    assert (await client.get("/v1/templates/order_shipped", headers=admin)).status_code == 200

    # Another tenant's template key (and one nobody has): 404, theirs untouched.
    for other in ("their_tpl", "nope"):
        r = await client.post(f"/console/templates/{other}/delete", data={"csrf": csrf}, follow_redirects=False)
        assert r.status_code == 404, other
    assert (await client.get("/v1/templates/their_tpl", headers=theirs)).status_code == 200

    r = await client.post("/console/templates/order_shipped/delete", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/templates?deleted=order_shipped"
    assert (await client.get("/v1/templates/order_shipped", headers=admin)).status_code == 404
    listing = await client.get(r.headers["location"])
    assert 'id="deleted"' in listing.text and 'href="/console/templates/order_shipped"' not in listing.text
    log = (await client.get("/v1/audit-log", params={"action": "template.deleted"}, headers=admin)).json()["items"]
    assert [(e["target_id"], e["actor_type"]) for e in log] == [("order_shipped", "api_key")]
    assert log[0]["before"]["default_locale"] == "en"


async def test_a_test_key_cannot_delete_a_template_or_read_suppressions(client: Any) -> None:
    a = await make_tenant(client)
    live = bearer(await make_key(client, a["id"], ["admin"]))
    assert (await client.post("/v1/templates", json=ORDER_SHIPPED, headers=live)).status_code == 201
    assert (await _sign_in(client, await make_key(client, a["id"], ["admin"], environment="test"))).status_code == 303
    csrf = _csrf((await client.get("/console/templates")).text)
    r = await client.post("/console/templates/order_shipped/delete", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 403
    assert (await client.get("/v1/templates/order_shipped", headers=live)).status_code == 200
    assert (await client.get("/console/suppressions")).status_code == 403  # live personal data, as on the API


async def test_the_suppressions_list_filters_pages_links_and_lifts(client: Any) -> None:
    b = await make_tenant(client)
    theirs_admin = bearer(await make_key(client, b["id"], ["admin"]))
    theirs = await _suppress(client, theirs_admin, email="ben@example.com")
    a = await make_tenant(client)
    key = await make_key(client, a["id"], ["admin"])
    admin = bearer(key)
    ava = await _suppress(client, admin, email="ava@example.com")
    bob = await _suppress(client, admin, phone="+14155550123")
    many = [await _suppress(client, admin, email=f"p{i}@example.com") for i in range(50)]  # 52 in all: two pages
    assert (await _sign_in(client, key)).status_code == 303

    page = await client.get("/console/suppressions")
    assert page.status_code == 200
    shown = re.findall(r'data-suppression="([0-9a-f-]{36})"', page.text)
    assert len(shown) == 50 and theirs["id"] not in shown
    assert shown == [s["id"] for s in reversed(many)]  # newest first, as the API
    older = re.search(r'href="(\?[^"]*cursor=[^"]+)" id="older"', page.text).group(1).replace("&amp;", "&")
    rest = re.findall(r'data-suppression="([0-9a-f-]{36})"', (await client.get("/console/suppressions" + older)).text)
    assert rest == [bob["id"], ava["id"]]

    # The API's filters: channel, and one person (exactly one; two is the API's 422, shown, not a 500).
    wa = await client.get("/console/suppressions", params={"channel": "whatsapp"})
    assert re.findall(r'data-suppression="([0-9a-f-]{36})"', wa.text) == [bob["id"]]
    assert f'href="/console/contacts/{bob["contact_id"]}"' in wa.text and "+14155550123" in wa.text
    one = await client.get("/console/suppressions", params={"email": "ava@example.com"})
    assert re.findall(r'data-suppression="([0-9a-f-]{36})"', one.text) == [ava["id"]]
    nobody = await client.get("/console/suppressions", params={"email": "ben@example.com"})  # tenant B's person
    assert re.findall(r'data-suppression="', nobody.text) == []
    two = await client.get("/console/suppressions", params={"email": "ava@example.com", "phone": "+14155550123"})
    assert two.status_code == 422 and 'id="error"' in two.text
    bad = await client.get("/console/suppressions", params={"cursor": "garbage"})
    assert bad.status_code == 422

    # Each row links to its contact's page, which opens.
    assert (await client.get(f"/console/contacts/{ava['contact_id']}")).status_code == 200
    csrf = _csrf(one.text)

    # Lift without the CSRF token: 403, still suppressed.
    for token in ({}, {"csrf": "forged"}):
        r = await client.post(
            f"/console/suppressions/{ava['id']}/lift", data={**token, "next": "/console/suppressions"}
        )
        assert r.status_code == 403
    assert (await client.get(f"/v1/suppressions/{ava['id']}", headers=admin)).status_code == 200
    # Another tenant's suppression: 404, still theirs.
    r = await client.post(
        f"/console/suppressions/{theirs['id']}/lift", data={"csrf": csrf, "next": "/console/suppressions"}
    )
    assert r.status_code == 404
    assert (await client.get(f"/v1/suppressions/{theirs['id']}", headers=theirs_admin)).status_code == 200

    # Lift from the list: back to the list (and only there: any other `next` goes to the contact's page).
    r = await client.post(
        f"/console/suppressions/{ava['id']}/lift",
        data={"csrf": csrf, "next": "/console/suppressions"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/suppressions"
    assert (await client.get(f"/v1/suppressions/{ava['id']}", headers=admin)).status_code == 404
    r = await client.post(
        f"/console/suppressions/{bob['id']}/lift",
        data={"csrf": csrf, "next": "https://evil.example"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/console/contacts/{bob['contact_id']}"
    left = (await client.get("/v1/suppressions", params={"limit": 200}, headers=admin)).json()["items"]
    assert {s["id"] for s in left} == {s["id"] for s in many}
    log = (await client.get("/v1/audit-log", params={"target_id": ava["id"]}, headers=admin)).json()["items"]
    assert log and log[0]["actor_type"] == "api_key"
