"""Consent evidence must be plausible (issue 11, §12): a 422 with a JSON pointer, and nothing recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import tenant_with_key

GRANT = {"phone": "+14155550123", "channel": "whatsapp", "status": "granted", "source": "checkout_form"}
SOON = (datetime.now(UTC) + timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    "change, pointer",
    [
        ({"captured_at": SOON}, "/captured_at"),  # in the future
        ({"captured_at": "0001-01-01T00:00:00Z"}, "/captured_at"),  # year 1
        ({"captured_at": "1999-12-31T23:59:59Z"}, "/captured_at"),  # before the floor
        ({"captured_at": "2026-11-01T10:00:00"}, "/captured_at"),  # no offset: which moment?
        ({"ip": "not an ip"}, "/ip"),
        ({"ip": "999.1.1.1"}, "/ip"),
        ({"ip": "203.0.113.9/24"}, "/ip"),
        ({"phone": None, "email": "ava@example.com"}, "/phone"),  # WhatsApp consent, email only
        ({"channel": "email"}, "/email"),  # email consent, phone only
    ],
)
async def test_implausible_consent_evidence_is_refused(client, change, pointer):
    _, admin = await tenant_with_key(client, ["admin"])
    body = {k: v for k, v in {**GRANT, **change}.items() if v is not None}
    r = await client.post("/v1/consents", json=body, headers=admin)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["pointer"] == pointer, r.json()
    lookup = {"email": "ava@example.com"} if "phone" in change else {"phone": GRANT["phone"]}
    assert (await client.get("/v1/consents", params=lookup, headers=admin)).status_code == 404  # nothing recorded


@pytest.mark.parametrize(
    "change",
    [
        {"captured_at": "2026-11-01T10:00:00Z", "ip": "203.0.113.9"},
        {"captured_at": (datetime.now(UTC) + timedelta(minutes=1)).isoformat(), "ip": "2001:db8::1"},  # skew
        {"phone": None, "whatsapp_user_id": "US.13491208655302741918"},
        {"channel": "email", "email": "ava@example.com"},
    ],
)
async def test_plausible_consent_evidence_is_recorded(client, change):
    _, admin = await tenant_with_key(client, ["admin"])
    body = {k: v for k, v in {**GRANT, **change}.items() if v is not None}
    r = await client.post("/v1/consents", json=body, headers=admin)
    assert r.status_code == 201, r.text
