"""Sensitive template variables (issue 14, part 4): an OTP code is sealed at rest, reaches the
provider, and is gone from every table once the notification is final."""

from __future__ import annotations

import hashlib
import json
import uuid

import msgspec
import pytest

from app.core.db import session_factory
from app.notify import idempotency, sensitive
from app.notify.models import Notification
from tests.app.test_erasure_everywhere import leftovers
from tests.factories import tenant_with_key
from tests.support.gateway import TEMPLATE_KEY, notify, read, settle, wired_tenant

CODE = "802731"
OTP_TEMPLATE = {
    "key": "otp",
    "default_locale": "en",
    "locales": {
        "en": {
            "email": {"subject": "Your code", "text": "Hi {{name}}, your code is {{code}}."},
        }
    },
    "sensitive_variables": ["code"],
}


async def load(notification_id: str) -> Notification:
    async with session_factory()() as s:
        return await s.get(Notification, uuid.UUID(notification_id))


async def test_a_template_names_its_sensitive_variables(client):
    _tenant, headers = await tenant_with_key(client)
    r = await client.post("/v1/templates", json=OTP_TEMPLATE, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["sensitive_variables"] == ["code"]
    assert (await client.get("/v1/templates/otp", headers=headers)).json()["sensitive_variables"] == ["code"]
    plain = {**OTP_TEMPLATE, "key": "plain"}
    del plain["sensitive_variables"]
    assert (await client.post("/v1/templates", json=plain, headers=headers)).json()["sensitive_variables"] == []


@pytest.mark.parametrize(
    ("names", "pointer"),
    [(["pin"], "/sensitive_variables/0"), (["code", "code"], "/sensitive_variables"), (["9x"], "sensitive_variables")],
)
async def test_a_sensitive_variable_must_be_one_of_the_template(client, names, pointer):
    _tenant, headers = await tenant_with_key(client)
    r = await client.post("/v1/templates", json={**OTP_TEMPLATE, "sensitive_variables": names}, headers=headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert pointer in r.text


@pytest.mark.usefixtures("worker")
async def test_the_code_is_sealed_sent_and_then_gone_everywhere(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    assert (await client.post("/v1/templates", json=OTP_TEMPLATE, headers=t.admin)).status_code == 201
    r = await client.post(
        "/v1/notifications",
        json={"to": {"email": "ava@example.com"}, "template": "otp", "variables": {"name": "Ava", "code": CODE}},
        headers={**t.sender, "Idempotency-Key": "otp-1"},
    )
    assert r.status_code == 202, r.text
    nid = r.json()["id"]

    await settle(emulator)

    (mail,) = emulator.sendgrid_messages(api_key=t.sendgrid["api_key"])
    assert CODE in json.dumps(mail["request"])  # the person got their code
    n = await read(client, t, nid)
    assert n["status"] == "delivered", n
    row = await load(nid)
    assert row.variables == {"name": "Ava", "code": sensitive.PLACEHOLDER}
    assert row.sealed_variables is None  # dropped once final
    assert await leftovers([CODE]) == []  # no table, no column, no JSON holds it in clear


async def test_until_the_send_the_value_is_sealed_not_clear(client):
    _tenant, headers = await tenant_with_key(client)
    assert (await client.post("/v1/templates", json=OTP_TEMPLATE, headers=headers)).status_code == 201
    r = await client.post(
        "/v1/notifications",
        json={"to": {"email": "ava@example.com"}, "template": "otp", "variables": {"name": "Ava", "code": CODE}},
        headers=headers,
    )
    assert r.status_code == 202, r.text
    row = await load(r.json()["id"])  # no worker here: accepted, not sent
    assert row.variables == {"name": "Ava", "code": sensitive.PLACEHOLDER}
    assert row.sealed_variables and CODE not in row.sealed_variables
    assert await leftovers([CODE]) == []
    assert sensitive.for_send(row) == {"name": "Ava", "code": CODE}
    sensitive.drop(row)
    with pytest.raises(sensitive.Dropped):  # a late send fails rather than go out with the placeholder
        sensitive.for_send(row)


@pytest.mark.usefixtures("worker")
async def test_templates_without_sensitive_variables_are_stored_as_before(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    nid = await notify(client, t)
    await settle(emulator)
    row = await load(nid)
    assert row.variables == {"name": "Ava", "order": "18473"} and row.sealed_variables is None
    assert (await read(client, t, nid))["status"] in ("delivered", "read")
    assert row.template_key == TEMPLATE_KEY


def test_the_idempotency_fingerprint_is_keyed():
    payload = {"template": "otp", "variables": {"code": CODE}}
    plain = hashlib.sha256(msgspec.json.encode(payload, order="sorted")).digest()
    assert idempotency.fingerprint(payload) != plain  # a plain hash would give the six digits away
    assert idempotency.legacy_fingerprint(payload) == plain
    assert idempotency.fingerprint(payload) == idempotency.fingerprint(dict(reversed(payload.items())))


async def test_an_idempotent_retry_replays_with_a_keyed_or_a_legacy_hash(client):
    from sqlalchemy import update

    from app.notify.models import IdempotencyRecord

    _tenant, headers = await tenant_with_key(client)
    body = {"to": {"email": "ava@example.com"}, "text": "hello"}
    first = await client.post("/v1/notifications", json=body, headers={**headers, "Idempotency-Key": "k1"})
    assert first.status_code == 202, first.text
    again = await client.post("/v1/notifications", json=body, headers={**headers, "Idempotency-Key": "k1"})
    assert again.headers.get("idempotent-replayed") == "true" and again.json()["id"] == first.json()["id"]
    # A record stored by the release before (unkeyed hash) still replays; a hash that is neither is 422.
    from app.notify.schemas import NotificationIn

    legacy = idempotency.legacy_fingerprint(msgspec.to_builtins(msgspec.convert(body, NotificationIn)))
    for stored, status in ((legacy, 202), (b"x" * 32, 422)):
        async with session_factory()() as s:
            await s.execute(update(IdempotencyRecord).values(request_hash=stored))
            await s.commit()
        r = await client.post("/v1/notifications", json=body, headers={**headers, "Idempotency-Key": "k1"})
        assert r.status_code == status, r.text
        if status == 202:
            assert r.headers.get("idempotent-replayed") == "true" and r.json()["id"] == first.json()["id"]


async def test_editing_in_the_console_keeps_the_sensitive_marking(client):
    import html
    import re

    from tests.console.test_session import _csrf, _sign_in
    from tests.factories import make_key, make_tenant

    tenant = await make_tenant(client)
    key = await make_key(client, tenant["id"], ["admin"])
    admin = {"Authorization": f"Bearer {key}"}
    assert (await client.post("/v1/templates", json=OTP_TEMPLATE, headers=admin)).status_code == 201
    assert (await _sign_in(client, key)).status_code == 303
    page = await client.get("/console/templates/otp")
    body = html.unescape(re.search(r'<textarea name="body"[^>]*>(.*?)</textarea>', page.text, re.S).group(1))
    assert json.loads(body)["sensitive_variables"] == ["code"]
    r = await client.post(
        "/console/templates",
        data={"csrf": _csrf(page.text), "existing": "otp", "body": body, "action": "save"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert (await client.get("/v1/templates/otp", headers=admin)).json()["sensitive_variables"] == ["code"]
