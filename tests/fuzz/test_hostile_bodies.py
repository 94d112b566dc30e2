"""Hypothesis strategies for the bodies that gave 500s (issue 11, section 7), on the gateway served by uvicorn.

- a U+0000 anywhere inside a JSON body (a value or a key, at any depth) on every JSON route: 422,
  and the problem's pointer names exactly where it was;
- JSON nested deeper than app.core.jsonbody.MAX_DEPTH on every JSON route, with or without a
  key: a 400 problem, never a 500 (this used to fail before authentication);
- the same deep nesting in a validly signed SendGrid event batch: 400, and nothing stored.

Each operation comes from the committed OpenAPI document, so a new JSON route is covered without
editing this file. Budget: NOTIFYGW_FUZZ_EXAMPLES, as tests/fuzz/test_schemathesis.py.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from sqlalchemy import func, select

from app.core.db import session_factory
from app.core.jsonbody import MAX_DEPTH
from app.webhooks.models import RawEvent
from channels.signatures import (
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_TIMESTAMP_HEADER,
    sendgrid_public_key_b64,
    sign_sendgrid_event,
)
from tests.factories import OPERATOR
from tests.support.gateway import wired_tenant
from tests.support.providers import Emulator

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
EXAMPLES = int(__import__("os").environ.get("NOTIFYGW_FUZZ_EXAMPLES") or 8)
MAX_BODY = 65536


def json_operations() -> list[tuple[str, str]]:
    doc = json.loads(SCHEMA_PATH.read_text())
    return sorted(
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "application/json" in op.get("requestBody", {}).get("content", {})
    )


OPERATIONS = json_operations()


def concrete(path: str) -> str:
    """Path parameters filled with well-formed values, so the request reaches body decoding rather than a 404."""
    return (
        path.replace("{tenant_id}", str(uuid.uuid4()))
        .replace("{endpoint_id}", str(uuid.uuid4()))
        .replace("{template_key}", "fuzz_template")
    )


# --- strategies ----------------------------------------------------------------------------------

_TEXT = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=24,
)


def _strings(value: Any, pointer: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(pointer, container, key or index) of every string and every dict key in the document."""
    if isinstance(value, dict):
        for key, child in value.items():
            child_pointer = f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}"
            yield child_pointer, value, ("key", key)
            if isinstance(child, str):
                yield child_pointer, value, ("value", key)
            yield from _strings(child, child_pointer)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            if isinstance(child, str):
                yield f"{pointer}/{index}", value, ("value", index)
            yield from _strings(child, f"{pointer}/{index}")


@st.composite
def documents_with_one_nul(draw: Any) -> tuple[dict[str, Any], str]:
    """A JSON object with exactly one U+0000, somewhere in a value or a key, and the pointer to it."""
    doc = draw(st.dictionaries(_TEXT, json_values, max_size=5))
    places = list(_strings(doc))
    if not places:
        doc["field"] = ""
        places = list(_strings(doc))
    pointer, container, (what, key) = draw(st.sampled_from(places))
    if what == "value":
        text = container[key]
        at = draw(st.integers(0, len(text)))
        container[key] = text[:at] + "\x00" + text[at:]
    else:
        at = draw(st.integers(0, len(key)))
        new_key = key[:at] + "\x00" + key[at:]
        container[new_key] = container.pop(key)
        pointer = pointer.rsplit("/", 1)[0] + "/" + new_key.replace("~", "~0").replace("/", "~1")
    return doc, pointer


@st.composite
def deep_documents(draw: Any, budget: int = MAX_BODY - 64) -> bytes:
    """JSON nested past MAX_DEPTH (up to what fits in the body limit), arrays, objects or both mixed."""
    openers = draw(st.lists(st.sampled_from(["[", '{"a":']), min_size=1, max_size=3))
    depth = draw(st.integers(MAX_DEPTH + 1, budget // 6))
    opening = "".join(openers[i % len(openers)] for i in range(depth))
    closing = "".join("]" if openers[i % len(openers)] == "[" else "}" for i in reversed(range(depth)))
    return (opening + "1" + closing).encode()


# --- the world -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def hostile(app: Any, gateway: str, fuzz_emulator: Emulator) -> dict[str, Any]:
    """A wired tenant, with a SendGrid event key whose private half we hold (to sign hostile batches)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from litestar.testing import AsyncTestClient

    signing_key = ec.generate_private_key(ec.SECP256R1())
    async with AsyncTestClient(app=app, base_url="https://gw.test") as client:
        wired = await wired_tenant(client, fuzz_emulator, gateway)
        r = await client.patch(
            f"/operator/v1/tenants/{wired.id}", json={"api_rate_per_second": 100_000}, headers=OPERATOR
        )
        assert r.status_code == 200, r.text
        r = await client.put(
            "/v1/providers/sendgrid",
            headers=wired.admin,
            json={
                "api_key": wired.sendgrid["api_key"],
                "from_email": "notify@example.com",
                "event_webhook_public_key": sendgrid_public_key_b64(signing_key),
            },
        )
        assert r.status_code == 200, r.text
    return {"tenant_id": wired.id, "headers": wired.admin, "signing_key": signing_key}


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def headers_for(path: str, hostile: dict[str, Any], authenticated: bool = True) -> dict[str, str]:
    base = {"Content-Type": "application/json"}
    if not authenticated:
        return base
    return {**base, **(OPERATOR if path.startswith("/operator/") else hostile["headers"])}


def assert_problem(r: requests.Response, status: int, slug: str) -> dict[str, Any]:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:400]}"
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers["content-type"]
    body = r.json()
    assert body["type"].endswith("/" + slug), body
    return body


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


# --- the properties ------------------------------------------------------------------------------


@FUZZ
@given(operation=st.sampled_from(OPERATIONS), case=documents_with_one_nul())
def test_a_nul_anywhere_in_a_json_body_is_422_pointing_at_it(operation, case, hostile, gateway, http):
    method, path = operation
    doc, pointer = case
    r = http.request(method, gateway + concrete(path), data=json.dumps(doc), headers=headers_for(path, hostile))
    body = assert_problem(r, 422, "validation-failed")
    assert body["errors"][0]["pointer"] == pointer, (doc, body)


@FUZZ
@given(operation=st.sampled_from(OPERATIONS), body=deep_documents(), authenticated=st.booleans())
def test_deep_json_is_400_on_every_json_route_with_or_without_a_key(
    operation, body, authenticated, hostile, gateway, http
):
    method, path = operation
    r = http.request(method, gateway + concrete(path), data=body, headers=headers_for(path, hostile, authenticated))
    assert_problem(r, 400, "malformed-request")


@FUZZ
@given(depth=st.integers(1, MAX_DEPTH - 2))
def test_nesting_within_the_bound_is_accepted(depth, hostile, gateway, http):
    metadata: Any = "leaf"
    for _ in range(depth):  # the body's own object, and "metadata", are two levels more
        metadata = {"n": metadata}
    r = http.post(
        gateway + "/v1/notifications",
        headers=headers_for("/v1/notifications", hostile),
        json={"to": {"phone": "+14155550177"}, "text": "hi", "metadata": {"deep": metadata}},
    )
    assert r.status_code == 202, r.text


@FUZZ
@given(deep=deep_documents(budget=MAX_BODY - 400), where=st.sampled_from(["event", "field", "batch"]))
def test_a_signed_deep_sendgrid_batch_is_400_and_stores_nothing(deep, where, hostile, gateway, http):
    good = {
        "event": "delivered",
        "email": "a@example.com",
        "sg_event_id": uuid.uuid4().hex,
        "timestamp": int(time.time()),
    }
    nested = deep.decode()
    if where == "event":  # a valid event first, then a deep one: refusing must not keep the first
        raw = f"[{json.dumps(good)}, {nested}]"
    elif where == "field":
        raw = f'[{json.dumps(good)[:-1]}, "extra": {nested}}}]'
    else:
        raw = nested
    payload, stamp = raw.encode(), str(int(time.time()))
    r = http.post(
        f"{gateway}/webhooks/sendgrid/{hostile['tenant_id']}",
        data=payload,
        headers={
            "Content-Type": "application/json",
            SENDGRID_TIMESTAMP_HEADER: stamp,
            SENDGRID_SIGNATURE_HEADER: sign_sendgrid_event(hostile["signing_key"], payload, stamp),
        },
    )
    assert_problem(r, 400, "malformed-callback")


@FUZZ
@given(case=documents_with_one_nul())
def test_a_signed_sendgrid_batch_with_a_nul_is_400_and_stores_nothing(case, hostile, gateway, http):
    doc, _ = case
    good = {
        "event": "delivered",
        "email": "a@example.com",
        "sg_event_id": uuid.uuid4().hex,
        "timestamp": int(time.time()),
    }
    payload, stamp = (
        json.dumps([good, {**good, "sg_event_id": uuid.uuid4().hex, **doc}]).encode(),
        str(int(time.time())),
    )
    r = http.post(
        f"{gateway}/webhooks/sendgrid/{hostile['tenant_id']}",
        data=payload,
        headers={
            "Content-Type": "application/json",
            SENDGRID_TIMESTAMP_HEADER: stamp,
            SENDGRID_SIGNATURE_HEADER: sign_sendgrid_event(hostile["signing_key"], payload, stamp),
        },
    )
    assert_problem(r, 400, "malformed-callback")


async def test_no_refused_sendgrid_batch_was_stored_half_way(hostile):
    """Runs after the two SendGrid properties above (file order): every batch they sent was refused whole."""
    async with session_factory()() as s:
        stored = (
            await s.execute(
                select(func.count())
                .select_from(RawEvent)
                .where(RawEvent.tenant_id == uuid.UUID(hostile["tenant_id"]), RawEvent.kind == "sendgrid")
            )
        ).scalar_one()
    assert stored == 0
