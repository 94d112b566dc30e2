"""Schemathesis against the committed OpenAPI document, on the gateway served by uvicorn.

Every operation of openapi/openapi.json (minus the excludes below) is called with generated data,
valid and invalid, and every response must be:

  not a server error (no 5xx), of a documented status code and content type, and of the documented
  shape (errors are problem+json, app/core/problem_docs.py).

Half the calls carry tenant A's admin key, half tenant B's; the operator API gets the operator token.
Both tenants hold real data (a template, a routing policy, a consent, a suppression, a notification,
a webhook endpoint with a delivery, a spare API key), and path ids are often replaced by real ones:
the caller's own (the route has something to hit) or the other tenant's (must not be found).

Budget: NOTIFYGW_FUZZ_EXAMPLES examples per operation (default 8; `make fuzz` sets 100). With CI set
(any non-empty value) the run is derandomized, so a red CI run replays exactly. See docs/fuzzing.md.
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.app.endpoints.factories import create_endpoint, stored_delivery
from tests.conftest import EMULATOR_URL, GATEWAY_URL
from tests.factories import ALL_SCOPES, OPERATOR, make_key, make_tenant
from tests.support.gateway import TEMPLATE_KEY, wired_tenant
from tests.support.providers import Emulator
from tests.tenants.test_templates_routing import ORDER_SHIPPED

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
EXAMPLES = int(os.environ.get("NOTIFYGW_FUZZ_EXAMPLES") or 8)
IN_CI = bool(os.environ.get("CI"))

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# Not fuzzed:
# - /webhooks/*: Twilio and SendGrid sign every callback (X-Twilio-Signature over the URL and form,
#   an ECDSA signature over SendGrid's batch). Generated requests cannot carry a valid signature, so
#   all we would learn is that the signature check answers 403; tests/app/webhooks covers those routes.
# - /_emulator/*: the provider emulator, mounted only in dev; not in the committed schema anyway.
# - /schema/*: the OpenAPI UI and document themselves (Litestar's); not in the schema either.
EXCLUDED_PATHS = r"^/webhooks/"

# Path parameters we can fill with a real object's id; the rest stay as generated.
KNOWN_PARAMS = (
    "key_id",
    "template_key",
    "suppression_id",
    "notification_id",
    "contact_id",
    "endpoint_id",
    "delivery_id",
)
DOOMED_KEY = "doomed_template"


def own_template(content_sid: str) -> dict[str, Any]:
    """ORDER_SHIPPED on the tenant's own Content template: a ContentSid must be one its Twilio account lists."""
    en = ORDER_SHIPPED["locales"]["en"]
    return {
        **{k: v for k, v in ORDER_SHIPPED.items() if k != "locales"},
        "locales": {
            "en": {"whatsapp": {"content_sid": content_sid, "variables": ["name", "order"]}, "email": en["email"]}
        },
    }


# Webhook endpoints point at the emulator (a trusted host in the test settings), so that a delivery
# resent by the fuzzer, if a worker of the wider test session picks it up, stays on this machine.
HOOK_URL = f"{EMULATOR_URL}/fuzz-webhook-receiver"


async def _objects(
    client: Any, tenant_id: str, admin: dict[str, str], template_key: str, phone: str, email: str
) -> dict[str, str]:
    """One object per id-taking route, named by path parameter."""
    # A spare key: DELETE /v1/api-keys/{key_id} must never revoke the admin key the fuzzer is using.
    spare = await client.post("/v1/api-keys", json={"name": "spare", "scopes": ["notifications:read"]}, headers=admin)
    assert spare.status_code == 201, spare.text
    consent = await client.post(
        "/v1/consents",
        headers=admin,
        json={"phone": phone, "channel": "whatsapp", "status": "granted", "source": "fuzz"},
    )
    assert consent.status_code == 201, consent.text
    suppression = await client.post(
        "/v1/suppressions", headers=admin, json={"email": email, "channel": "email", "reason": "fuzz"}
    )
    assert suppression.status_code == 201, suppression.text
    notification = await client.post(
        "/v1/notifications", headers=admin, json={"to": {"phone": phone, "email": "ok-" + email}, "text": "fuzz"}
    )
    assert notification.status_code == 202, notification.text
    endpoint = (await create_endpoint(client, admin, url=HOOK_URL))["id"]
    return {
        "key_id": spare.json()["id"],
        "template_key": template_key,
        "suppression_id": suppression.json()["id"],
        "notification_id": notification.json()["id"],
        "contact_id": consent.json()["contact_id"],
        "endpoint_id": endpoint,
        "delivery_id": await stored_delivery(tenant_id, endpoint),
    }


async def _seed_tenant(client: Any, emulator: Emulator, gateway: str, n: int) -> dict[str, Any]:
    # Twilio and SendGrid credentials on the emulator (PUT /v1/providers/* verifies against a real
    # server, not a refused connection, which would be an honest 503), a template, a routing policy.
    wired = await wired_tenant(client, emulator, gateway)
    admin = wired.admin
    # The calls are sequential and far below the default limit; raised anyway so that no 429 ever
    # hides a route from the fuzzer.
    r = await client.patch(f"/operator/v1/tenants/{wired.id}", json={"api_rate_per_second": 100_000}, headers=OPERATOR)
    assert r.status_code == 200, r.text
    doomed_template = {**own_template(wired.content_sid), "key": DOOMED_KEY}
    assert (await client.post("/v1/templates", json=doomed_template, headers=admin)).status_code == 201
    # Pytest runs the operations in schema order, where DELETE comes before GET, PATCH and PUT: the
    # DELETEs get objects of their own ("doomed"), so the reads still find the kept ones.
    kept = await _objects(client, wired.id, admin, TEMPLATE_KEY, f"+1415555{n}101", f"kept{n}@example.com")
    doomed = await _objects(client, wired.id, admin, DOOMED_KEY, f"+1415555{n}102", f"doomed{n}@example.com")
    a = wired.account
    providers = {  # to put back after a fuzzed DELETE /v1/providers/* succeeded
        "/v1/providers/twilio": {
            k: a[k] for k in ("account_sid", "auth_token", "api_key_sid", "api_key_secret", "whatsapp_from")
        },
        "/v1/providers/sendgrid": {
            "api_key": wired.sendgrid["api_key"],
            "from_email": "notify@example.com",
            "from_name": "Example",
            "event_webhook_public_key": wired.sendgrid["event_webhook_public_key"],
        },
    }
    return {
        "tenant_id": wired.id,
        "headers": admin,
        "params": kept,
        "doomed": doomed,
        "providers": providers,
        "template": own_template(wired.content_sid),
    }


@pytest.fixture(scope="module")
async def world(app: Any, gateway: str, fuzz_emulator: Emulator) -> dict[str, Any]:
    """Tenants A and B with data, and tenant C for the operator routes to patch (suspend, rate-limit)."""
    from litestar.testing import AsyncTestClient

    async with AsyncTestClient(app=app, base_url="https://gw.test") as client:
        a = await _seed_tenant(client, fuzz_emulator, gateway, 1)
        b = await _seed_tenant(client, fuzz_emulator, gateway, 2)
        victim = await make_tenant(client, "Operator fuzz target")
        await make_key(client, victim["id"], ALL_SCOPES)
    return {"A": a, "B": b, "C": victim["id"]}


CALLS: defaultdict[str, Counter[int]] = defaultdict(Counter)  # operation -> status -> calls


@pytest.fixture(scope="module")
def http(request: pytest.FixtureRequest) -> Iterator[requests.Session]:
    with requests.Session() as s:  # keep-alive: one connection for the whole run
        yield s
    if CALLS:  # one summary line, for docs/fuzzing.md's figures
        statuses = sum(CALLS.values(), Counter())
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(
                f"\nschemathesis: {len(CALLS)} operations, {sum(statuses.values())} calls at "
                f"NOTIFYGW_FUZZ_EXAMPLES={EXAMPLES}; statuses: "
                + ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))
            )
            if os.environ.get("NOTIFYGW_FUZZ_VERBOSE"):
                for label, counts in sorted(CALLS.items()):
                    print(f"  {label}: " + ", ".join(f"{code}: {n}" for code, n in sorted(counts.items())))


# Loaded from the committed file, not from the server: the document clients are given is the one
# under test. tests/meta/test_openapi.py keeps it equal to what the app serves at /schema/openapi.json.
schema = schemathesis.openapi.from_path(
    SCHEMA_PATH,
    config=schemathesis.Config.from_dict(
        {
            "base-url": GATEWAY_URL,
            "generation": {"max-examples": EXAMPLES, "deterministic": IN_CI},
        }
    ),
).exclude(path_regex=EXCLUDED_PATHS)


# --- a cheap explicit isolation check, independent of what the fuzzer happens to draw --------------

ISOLATION_ROUTES = [
    ("GET", "/v1/api-keys/{key_id}"),
    ("GET", "/v1/notifications/{notification_id}"),
    ("GET", "/v1/contacts/{contact_id}"),
    ("GET", "/v1/suppressions/{suppression_id}"),
    ("GET", "/v1/webhook-endpoints/{endpoint_id}"),
    ("GET", "/v1/webhook-endpoints/{endpoint_id}/deliveries"),
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/resend"),
    ("DELETE", "/v1/contacts/{contact_id}"),
    ("DELETE", "/v1/webhook-endpoints/{endpoint_id}"),
]


def test_tenant_b_cannot_see_tenant_a_ids(world: dict[str, Any], gateway: str, http: requests.Session) -> None:
    a, b = world["A"], world["B"]
    for method, template in ISOLATION_ROUTES:
        url = gateway + re.sub(r"{(\w+)}", lambda m: a["params"][m.group(1)], template)
        r = http.request(method, url, headers=b["headers"])
        assert r.status_code == 404, f"{method} {template} with B's key on A's id: {r.status_code} {r.text[:300]}"
        assert r.headers["content-type"].startswith("application/problem+json")
        # ...and A's own key still sees it (the 404 above is about ownership, not a bad id).
        if method == "GET":
            mine = http.request(method, url, headers=a["headers"])
            assert mine.status_code == 200, f"{method} {template} with A's own key: {mine.status_code}"


# --- well-formed calls, whose 2xx bodies the fuzzer rarely reaches -------------------------------
# Generated bodies almost never satisfy the semantic rules (a template's variables, E.164 numbers,
# one identifier of several): these are the success responses checked against the schema for sure.


def known_good_calls(world: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    a = world["A"]["params"]
    sendgrid = world["A"]["providers"]["/v1/providers/sendgrid"]
    template = world["A"]["template"]
    return [  # (method, path template, path parameters, request kwargs)
        ("POST", "/v1/templates", {}, {"json": {**template, "key": "known_good"}}),
        (
            "PUT",
            "/v1/templates/{template_key}",
            {"template_key": "known_good"},
            {"json": {k: v for k, v in template.items() if k != "key"} | {"description": "v2"}},
        ),
        ("POST", "/v1/templates/sync", {}, {}),
        ("GET", "/v1/templates/{template_key}", {"template_key": "known_good"}, {}),
        (
            "POST",
            "/v1/notifications",
            {},
            {
                "json": {
                    "to": {"phone": "+14155550199", "email": "k@example.com"},
                    "template": TEMPLATE_KEY,
                    "variables": {"name": "Ava", "order": "18473"},
                }
            },
        ),
        ("GET", "/v1/notifications/{notification_id}", {"notification_id": a["notification_id"]}, {}),
        ("GET", "/v1/notifications", {}, {}),
        (
            "POST",
            "/v1/consents",
            {},
            {
                "json": {
                    "phone": "+14155550198",
                    "channel": "whatsapp",
                    "status": "granted",
                    "source": "known-good",
                    "proof": "form #12",
                }
            },
        ),
        ("GET", "/v1/consents", {}, {"params": {"phone": "+14155550198"}}),
        ("POST", "/v1/suppressions", {}, {"json": {"email": "stop@example.com", "channel": "email", "reason": "x"}}),
        ("GET", "/v1/suppressions/{suppression_id}", {"suppression_id": a["suppression_id"]}, {}),
        ("GET", "/v1/contacts/{contact_id}", {"contact_id": a["contact_id"]}, {}),
        ("GET", "/v1/contacts", {}, {}),
        (
            "POST",
            "/v1/webhook-endpoints",
            {},
            {"json": {"url": HOOK_URL + "/known-good", "events": ["message.received"]}},
        ),
        (
            "PATCH",
            "/v1/webhook-endpoints/{endpoint_id}",
            {"endpoint_id": a["endpoint_id"]},
            {"json": {"events": ["notification.updated"], "status": "enabled"}},
        ),
        ("GET", "/v1/webhook-endpoints/{endpoint_id}/deliveries", {"endpoint_id": a["endpoint_id"]}, {}),
        (
            "POST",
            "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/resend",
            {"endpoint_id": a["endpoint_id"], "delivery_id": a["delivery_id"]},
            {},
        ),
        ("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret", {"endpoint_id": a["endpoint_id"]}, {}),
        ("PUT", "/v1/providers/sendgrid", {}, {"json": sendgrid}),
        ("GET", "/v1/providers/twilio", {}, {}),
        (
            "PUT",
            "/v1/routing",
            {},
            {"json": {"require_whatsapp_opt_in": True, "whatsapp": {"sender_rate_per_second": 50}}},
        ),
        ("GET", "/v1/routing", {}, {}),
        ("POST", "/v1/api-keys", {}, {"json": {"name": "known-good", "scopes": ["notifications:send"]}}),
        ("GET", "/v1/api-keys/{key_id}", {"key_id": a["key_id"]}, {}),
        ("GET", "/v1/audit-log", {}, {}),
        ("POST", "/operator/v1/tenants", {}, {"json": {"name": "Known good", "slug": "known-good"}}),
        ("PATCH", "/operator/v1/tenants/{tenant_id}", {"tenant_id": world["C"]}, {"json": {"api_rate_per_second": 5}}),
        (
            "POST",
            "/operator/v1/tenants/{tenant_id}/api-keys",
            {"tenant_id": world["C"]},
            {"json": {"name": "known-good", "scopes": ["admin"], "environment": "test"}},
        ),
        ("GET", "/operator/v1/tenants/{tenant_id}", {"tenant_id": world["A"]["tenant_id"]}, {}),
    ]


def test_known_good_calls_match_the_schema(world: dict[str, Any], gateway: str, http: requests.Session) -> None:
    for method, template, params, kwargs in known_good_calls(world):
        headers = OPERATOR if template.startswith("/operator/") else world["A"]["headers"]
        r = http.request(method, gateway + template.format(**params), headers=headers, **kwargs)
        assert 200 <= r.status_code < 300, f"{method} {template}: {r.status_code} {r.text[:500]}"
        schema[template][method].validate_response(r)  # raises on any violation of the documented body


# --- what the fuzzer found, pinned down -----------------------------------------------------------

NUL_CASES = [  # (method, path, request kwargs): PostgreSQL text cannot store U+0000 (it was a 500)
    ("POST", "/operator/v1/tenants", {"json": {"name": "a\u0000b"}}),
    ("POST", "/v1/api-keys", {"json": {"name": "a\u0000b", "scopes": ["admin"]}}),
    ("GET", "/v1/consents", {"params": {"email": "a\u0000b@example.com"}}),
]


def test_nul_characters_are_a_client_error(world: dict[str, Any], gateway: str, http: requests.Session) -> None:
    for method, path, kwargs in NUL_CASES:
        headers = OPERATOR if path.startswith("/operator/") else world["A"]["headers"]
        r = http.request(method, gateway + path, headers=headers, **kwargs)
        assert 400 <= r.status_code < 500, f"{method} {path}: {r.status_code} {r.text[:300]}"
        assert r.headers["content-type"].startswith("application/problem+json")


# --- the fuzzer ----------------------------------------------------------------------------------


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=IN_CI,
    database=None if IN_CI else settings.default.database,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@schema.parametrize()
@schema.given(data=st.data())
def test_api_conforms_to_its_schema(
    case: Any, data: Any, world: dict[str, Any], gateway: str, http: requests.Session
) -> None:
    path, method = case.operation.path, case.method.upper()
    owner = None  # whose objects the path names, when we put real ids in it
    if path.startswith("/operator/") or path == "/metrics":
        case.headers = {**(case.headers or {}), **OPERATOR}
        # Tenant C only: PATCH may suspend it or rate-limit it to 1/s, which must not touch A or B.
        if "tenant_id" in (case.path_parameters or {}) and data.draw(st.booleans(), label="real tenant_id"):
            case.path_parameters["tenant_id"] = world["C"]
    elif path.startswith("/v1/"):
        me = data.draw(st.sampled_from("AB"), label="tenant")
        case.headers = {**(case.headers or {}), **world[me]["headers"]}
        names = [n for n in (case.path_parameters or {}) if n in KNOWN_PARAMS]
        if names:
            owner = data.draw(st.sampled_from((None, "A", "B")), label="ids of")
            if owner is not None:
                objects = world[owner]["doomed" if method == "DELETE" else "params"]
                case.path_parameters.update({n: objects[n] for n in names})
    response = case.call_and_validate(session=http, checks=CHECKS)
    CALLS[case.operation.label][response.status_code] += 1

    if owner is not None and owner != me and names != ["template_key"]:
        # Another tenant's object: not found; or refused before any lookup (body or query of the
        # wrong shape). Template keys are excluded: each tenant names its own, and both have "order_shipped".
        assert response.status_code in (404, 400, 422), (
            f"{case.operation.label} with tenant {owner}'s id and tenant {me}'s key answered "
            f"{response.status_code}: {response.text[:500]}"
        )
    if (
        method == "DELETE"
        and path in ("/v1/providers/twilio", "/v1/providers/sendgrid")
        and response.status_code == 204
    ):
        # Singletons with no id to spare: put the credentials back for the GET and PUT that follow.
        again = http.put(gateway + path, json=world[me]["providers"][path], headers=world[me]["headers"])
        assert again.status_code == 200, again.text
