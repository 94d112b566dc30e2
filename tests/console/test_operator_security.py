"""The operator view's sign-in, cookie, CSRF and separation rules, without a browser."""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from app.console import operator_session
from app.core.config import Secret, get_settings
from app.core.db import session_factory, utcnow
from app.outbox.models import OutboxItem
from app.webhooks.ingest import PROCESS
from tenants.audit.models import AuditEntry
from tests.conftest import OPERATOR_TOKEN
from tests.factories import OPERATOR, bearer, make_key, make_tenant

SIGN_IN = "/console/operator/sign-in"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def _operator_sign_in(client: Any, token: str = OPERATOR_TOKEN) -> Any:
    form = await client.get(SIGN_IN)
    return await client.post(SIGN_IN, data={"csrf": _csrf(form.text), "token": token}, follow_redirects=False)


async def _tenant_sign_in(client: Any, key: str) -> Any:
    form = await client.get("/console/sign-in")
    return await client.post("/console/sign-in", data={"csrf": _csrf(form.text), "key": key}, follow_redirects=False)


async def _tenant_status(client: Any, tenant_id: str) -> str:
    return str((await client.get(f"/operator/v1/tenants/{tenant_id}", headers=OPERATOR)).json()["status"])


async def dead_letter(tenant_id: str, error: str = "TypeError: an older shape") -> uuid.UUID:
    """A job out of tries, as the outbox leaves one (tests/app/outbox/test_dead_letters.py makes one for real)."""
    async with session_factory()() as s:
        item = OutboxItem(
            tenant_id=uuid.UUID(tenant_id),
            kind=PROCESS,
            ref_id=uuid.uuid4(),  # no such event: a retried job finds nothing to do
            state="dead",
            tries=10,
            last_error=error,
            dead_at=utcnow(),
        )
        s.add(item)
        await s.commit()
        return item.id


async def _state(item_id: uuid.UUID) -> str:
    async with session_factory()() as s:
        return str((await s.execute(select(OutboxItem.state).where(OutboxItem.id == item_id))).scalar_one())


async def test_operator_cookie_flags_and_sign_in_refusals(client: Any) -> None:
    r = await _operator_sign_in(client)
    assert r.status_code == 303 and r.headers["location"] == "/console/operator/tenants"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("ngw_operator="))
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "secure" in flags  # NOTIFYGW_ENV=test: not dev
    assert "path=/console/operator" in flags
    assert OPERATOR_TOKEN not in cookie  # the token never goes back to the browser
    page = await client.get("/console/operator/tenants")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert OPERATOR_TOKEN not in page.text

    client.cookies.clear()
    tenant = await make_tenant(client)
    admin_key = await make_key(client, tenant["id"], ["admin"])
    for wrong in ("", "op_nope", OPERATOR_TOKEN[:-2], OPERATOR_TOKEN + "x", admin_key):
        r = await _operator_sign_in(client, wrong)  # a tenant's admin key is not the operator token either
        assert r.status_code == 401, wrong
        assert "ngw_operator=" not in r.headers.get("set-cookie", "")
    # The sign-in form itself needs its double-submit token.
    r = await client.post(SIGN_IN, data={"token": OPERATOR_TOKEN}, follow_redirects=False)
    assert r.status_code == 403 and "ngw_operator=" not in r.headers.get("set-cookie", "")
    # And the operator token is no tenant admin key.
    r = await _tenant_sign_in(client, OPERATOR_TOKEN)
    assert r.status_code == 401 and "ngw_console=" not in r.headers.get("set-cookie", "")


async def test_a_tenant_session_never_opens_operator_pages(client: Any) -> None:
    tenant = await make_tenant(client)
    key = await make_key(client, tenant["id"], ["admin"])
    item = await dead_letter(tenant["id"])
    assert (await _tenant_sign_in(client, key)).status_code == 303
    tenant_page = await client.get("/console/api-keys")
    assert tenant_page.status_code == 200
    csrf = _csrf(tenant_page.text)
    for path in ("/console/operator/tenants", f"/console/operator/tenants/{tenant['id']}", "/console/operator/queues"):
        r = await client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == SIGN_IN, path
    # Its forms, even with the tenant session's own CSRF token, change nothing here.
    r = await client.post(
        f"/console/operator/tenants/{tenant['id']}/status",
        data={"csrf": csrf, "status": "suspended"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == SIGN_IN
    r = await client.post(f"/console/operator/dead-letters/{item}/retry", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == SIGN_IN
    assert await _tenant_status(client, tenant["id"]) == "active" and await _state(item) == "dead"
    # The tenant's session id in the operator's cookie names no operator session.
    client.cookies.set("ngw_operator", client.cookies.get("ngw_console"), path="/console/operator")
    r = await client.get("/console/operator/tenants", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == SIGN_IN


async def test_an_operator_session_never_opens_tenant_pages(client: Any) -> None:
    await make_tenant(client)
    assert (await _operator_sign_in(client)).status_code == 303
    assert (await client.get("/console/operator/tenants")).status_code == 200
    for path in ("/console/notifications", "/console/api-keys", "/console/dashboard", "/console/settings"):
        r = await client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/console/sign-in", path
    # The operator's session id in the tenant's cookie names no tenant session.
    client.cookies.set("ngw_console", client.cookies.get("ngw_operator"), path="/console")
    r = await client.get("/console/api-keys", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/sign-in"


async def test_changing_forms_need_the_operator_csrf_token(client: Any) -> None:
    tenant = await make_tenant(client)
    key = await make_key(client, tenant["id"], ["admin"])
    item = await dead_letter(tenant["id"])
    assert (await _operator_sign_in(client)).status_code == 303
    page = await client.get(f"/console/operator/tenants/{tenant['id']}")
    assert page.status_code == 200
    csrf = _csrf(page.text)
    for data in ({"status": "suspended"}, {"status": "suspended", "csrf": "forged"}):
        r = await client.post(f"/console/operator/tenants/{tenant['id']}/status", data=data)
        assert r.status_code == 403
    for data in ({}, {"csrf": "forged"}):
        r = await client.post(f"/console/operator/dead-letters/{item}/retry", data=data)
        assert r.status_code == 403
        r = await client.post("/console/operator/sign-out", data=data)
        assert r.status_code == 403
    assert await _tenant_status(client, tenant["id"]) == "active" and await _state(item) == "dead"
    assert (await client.get("/console/operator/queues")).status_code == 200  # not signed out either

    # With the token: a tenant admin signed in elsewhere is signed out by the suspension, its key refused.
    admin = await _tenant_sign_in(client, key)
    assert admin.status_code == 303
    r = await client.post(
        f"/console/operator/tenants/{tenant['id']}/status",
        data={"csrf": csrf, "status": "suspended"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith("?changed=suspended")
    assert await _tenant_status(client, tenant["id"]) == "suspended"
    assert (await client.get("/v1/api-keys", headers=bearer(key))).status_code == 403
    r = await client.get("/console/api-keys", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/sign-in"
    # Audited as PATCH /operator/v1/tenants/{id} audits it: the operator, before and after.
    async with session_factory()() as s:
        entries = (
            (
                await s.execute(
                    select(AuditEntry).where(
                        AuditEntry.tenant_id == uuid.UUID(tenant["id"]), AuditEntry.action == "tenant.updated"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert [(e.actor_type, e.before["status"], e.after["status"]) for e in entries] == [
        ("operator", "active", "suspended")
    ]
    # A status that is not one is a 422 page, never a 500; an unknown tenant or dead letter is a 404.
    r = await client.post(f"/console/operator/tenants/{tenant['id']}/status", data={"csrf": csrf, "status": "gone"})
    assert r.status_code == 422
    assert (await client.get(f"/console/operator/tenants/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/console/operator/tenants/not-a-uuid")).status_code == 404
    assert (await client.get("/console/operator/tenants?status=gone")).status_code == 422
    r = await client.post(f"/console/operator/dead-letters/{uuid.uuid4()}/retry", data={"csrf": csrf})
    assert r.status_code == 404
    # Retried once; a second retry is a conflict (it is not dead any more).
    r = await client.post(f"/console/operator/dead-letters/{item}/retry", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert await _state(item) in ("pending", "done")  # done if a worker of this run picked its job up
    r = await client.post(f"/console/operator/dead-letters/{item}/retry", data={"csrf": csrf})
    assert r.status_code == 409


async def test_sign_out_and_a_new_operator_token_end_the_session(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (await _operator_sign_in(client)).status_code == 303
    stolen = client.cookies.get("ngw_operator")
    page = await client.get("/console/operator/queues")
    r = await client.post("/console/operator/sign-out", data={"csrf": _csrf(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == SIGN_IN
    client.cookies.set("ngw_operator", stolen, path="/console/operator")  # replayed: gone on the server
    r = await client.get("/console/operator/tenants", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == SIGN_IN

    client.cookies.clear()
    assert (await _operator_sign_in(client)).status_code == 303
    assert (await client.get("/console/operator/tenants", follow_redirects=False)).status_code == 200
    rotated = dataclasses.replace(get_settings(), operator_token=Secret("op_rotated_" + "r" * 30))
    monkeypatch.setattr(operator_session, "get_settings", lambda: rotated)
    r = await client.get("/console/operator/tenants", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == SIGN_IN


async def test_tenant_names_and_errors_are_shown_escaped(client: Any) -> None:
    hostile = "<script>alert(1)</script> Ltd"
    tenant = await make_tenant(client, hostile)
    await dead_letter(tenant["id"], error="ValueError: <img src=x onerror=alert(2)>")
    r = await client.patch(f"/operator/v1/tenants/{tenant['id']}", json={"status": "suspended"}, headers=OPERATOR)
    assert r.status_code == 200
    assert (await _operator_sign_in(client)).status_code == 303
    for path in (
        "/console/operator/tenants",
        "/console/operator/tenants?status=suspended",
        f"/console/operator/tenants/{tenant['id']}",
        "/console/operator/queues",
    ):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    page = await client.get("/console/operator/queues")
    assert "<img src=x" not in page.text and "&lt;img src=x onerror=alert(2)&gt;" in page.text
    # The status filter narrows the list: the suspended tenant is not among the active ones.
    assert tenant["id"] not in (await client.get("/console/operator/tenants?status=active")).text
