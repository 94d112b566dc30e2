from __future__ import annotations

from tenants.templates.rendering import content_variables, render_email, required_variables, resolve_locale
from tests.factories import bearer, make_key, tenant_with_key

HX = "HX" + "a" * 32
ORDER_SHIPPED = {
    "key": "order_shipped",
    "description": "Shipping notice",
    "default_locale": "en",
    "locales": {
        "en": {
            "whatsapp": {"content_sid": HX, "variables": ["name", "order", "carrier"]},
            "email": {
                "subject": "Your order {{order}} shipped",
                "text": "Hi {{name}}, {{carrier}} has it.",
                "html": "<p>Hi {{name}}</p>",
            },
        },
        "pt-BR": {
            "whatsapp": {"content_sid": "HX" + "b" * 32, "variables": ["name", "order", "carrier"]},
            "email": {"sendgrid_template_id": "d-" + "c" * 32},
        },
    },
}


def test_locale_fallback_order():
    locales = {"en": {}, "pt-BR": {}, "pt": {}, "de-DE": {}}
    assert resolve_locale(locales, "en", "pt-BR") == "pt-BR"
    assert resolve_locale(locales, "en", "pt-PT") == "pt"
    assert resolve_locale(locales, "en", "PT-br") == "pt-BR"
    assert resolve_locale(locales, "en", "fr-FR") == "en"
    assert resolve_locale(locales, "en", None) == "en"


def test_variables_map_in_order_to_numbered_strings():
    wa = {"variables": ["name", "order", "carrier"]}
    assert content_variables(wa, {"carrier": "UPS", "name": "Ava", "order": 18473}) == {
        "1": "Ava",
        "2": "18473",
        "3": "UPS",
    }


async def test_email_rendering_escapes_html_only():
    out = await render_email(
        {"subject": "Hi {{name}}", "text": "{{name}}", "html": "<b>{{name}}</b>"}, {"name": "<Ava & co>"}
    )
    assert out["subject"] == "Hi <Ava & co>" and out["text"] == "<Ava & co>"
    assert out["html"] == "<b>&lt;Ava &amp; co&gt;</b>"


def test_required_variables_include_email_only_names():
    content = {"whatsapp": {"variables": ["name"]}, "email": {"subject": "{{order}}", "text": "{{name}} {{extra}}"}}
    assert required_variables(content) == ["name", "extra", "order"]


async def test_template_crud_is_audited(client):
    _, admin = await tenant_with_key(client, ["admin"])
    r = await client.post("/v1/templates", json=ORDER_SHIPPED, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["locales"]["pt-BR"]["email"]["sendgrid_template_id"].startswith("d-")
    assert (await client.post("/v1/templates", json=ORDER_SHIPPED, headers=admin)).status_code == 409
    replaced = {k: v for k, v in ORDER_SHIPPED.items() if k != "key"} | {"description": "v2"}
    r = await client.put("/v1/templates/order_shipped", json=replaced, headers=admin)
    assert r.status_code == 200 and r.json()["description"] == "v2"
    assert [t["key"] for t in (await client.get("/v1/templates", headers=admin)).json()["items"]] == ["order_shipped"]
    assert (await client.delete("/v1/templates/order_shipped", headers=admin)).status_code == 204
    assert (await client.get("/v1/templates/order_shipped", headers=admin)).status_code == 404
    actions = [
        e["action"] for e in (await client.get("/v1/audit-log?target_type=template", headers=admin)).json()["items"]
    ]
    assert actions == ["template.deleted", "template.updated", "template.created"]


async def test_bad_templates_get_pointed_422(client):
    _, admin = await tenant_with_key(client, ["admin"])
    cases = {
        "/default_locale": {**ORDER_SHIPPED, "default_locale": "fr"},
        "/locales/en/email/html": {**ORDER_SHIPPED, "locales": {"en": {"email": {"subject": "s", "html": "{{ oops"}}}},
        "/locales/en/email": {**ORDER_SHIPPED, "locales": {"en": {"email": {"subject": "only a subject"}}}},
        "/locales/en": {**ORDER_SHIPPED, "locales": {"en": {}}},
        "/locales/*/whatsapp/content_sid": {**ORDER_SHIPPED, "locales": {"en": {"whatsapp": {"content_sid": "HX12"}}}},
    }
    for pointer, body in cases.items():
        r = await client.post("/v1/templates", json=body, headers=admin)
        assert r.status_code == 422, (pointer, r.text)
        assert r.json()["errors"][0]["pointer"] == pointer, r.json()


async def test_routing_defaults_and_replace(client):
    tenant, admin = await tenant_with_key(client, ["admin"])
    policy = (await client.get("/v1/routing", headers=admin)).json()
    assert policy["default_country"] == "US" and policy["whatsapp"]["sender_rate_per_second"] == 80
    assert "window_closed" in policy["fallback"]["email_on"] and policy["require_whatsapp_opt_in"] is True
    new = {
        "default_country": "GB",
        "whatsapp": {
            "messaging_service_sid": "MG" + "1" * 32,
            "by_country": {"DE": "MG" + "2" * 32},
            "sender_rate_per_second": 50,
        },
        "fallback": {"email_on": ["opted_out"]},
        "require_whatsapp_opt_in": False,
    }
    r = await client.put("/v1/routing", json=new, headers=admin)
    assert r.status_code == 200
    got = (await client.get("/v1/routing", headers=admin)).json()
    assert got["whatsapp"]["by_country"] == {"DE": "MG" + "2" * 32} and got["fallback"]["email_on"] == ["opted_out"]
    for bad in (
        {"default_country": "gb"},
        {"fallback": {"email_on": ["whenever"]}},
        {"whatsapp": {"by_country": {"DE": "MGnope"}}},
        {"whatsapp": {"sender_rate_per_second": 0}},
    ):
        assert (await client.put("/v1/routing", json=bad, headers=admin)).status_code == 422, bad
    sender = bearer(await make_key(client, tenant["id"], ["notifications:send"]))
    assert (await client.get("/v1/routing", headers=sender)).status_code == 403


async def test_sender_rate_has_a_sane_range(client):
    """1e-300 was accepted, and the limiter's Redis call then failed on every send, forever (issue 11, §12)."""
    _, admin = await tenant_with_key(client, ["admin"])
    for bad in (1e-300, 0.05, 1000.5, 1e300):
        r = await client.put("/v1/routing", json={"whatsapp": {"sender_rate_per_second": bad}}, headers=admin)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["errors"][0]["pointer"] == "/whatsapp/sender_rate_per_second", r.json()
    for good in (0.1, 1000):
        r = await client.put("/v1/routing", json={"whatsapp": {"sender_rate_per_second": good}}, headers=admin)
        assert r.status_code == 200, (good, r.text)


async def test_consent_ledger_and_suppressions(client):
    _, admin = await tenant_with_key(client, ["admin"])
    grant = {
        "phone": "+14155550123",
        "channel": "whatsapp",
        "status": "granted",
        "source": "checkout_form",
        "proof": "I agree to WhatsApp updates",
        "captured_at": "2026-11-01T10:00:00Z",
        "ip": "203.0.113.9",
    }
    r = await client.post("/v1/consents", json=grant, headers=admin)
    assert r.status_code == 201 and r.json()["state"]["whatsapp"] == "granted"
    await client.post(
        "/v1/consents", json={**grant, "status": "withdrawn", "captured_at": "2026-11-02T10:00:00Z"}, headers=admin
    )
    state = (await client.get("/v1/consents", params={"phone": "(415) 555-0123"}, headers=admin)).json()
    assert state["state"]["whatsapp"] == "withdrawn" and [h["status"] for h in state["history"]] == [
        "withdrawn",
        "granted",
    ]
    assert (await client.get("/v1/consents", params={"phone": "+14155550999"}, headers=admin)).status_code == 404
    assert (await client.post("/v1/consents", json={**grant, "phone": "+1 555"}, headers=admin)).status_code == 422

    s = await client.post(
        "/v1/suppressions", json={"email": "Ava@Example.com", "channel": "email", "reason": "bounce"}, headers=admin
    )
    assert s.status_code == 201
    again = await client.post(
        "/v1/suppressions", json={"email": "ava@example.com", "channel": "email", "reason": "bounce"}, headers=admin
    )
    assert again.json()["id"] == s.json()["id"]  # idempotent, and the address was normalised
    listed = (await client.get("/v1/suppressions", params={"email": "ava@example.com"}, headers=admin)).json()["items"]
    assert [x["id"] for x in listed] == [s.json()["id"]]
    assert (await client.delete(f"/v1/suppressions/{s.json()['id']}", headers=admin)).status_code == 204
    assert (await client.get("/v1/suppressions", headers=admin)).json()["items"] == []
    both = {"email": "a@b.co", "phone": "+14155550123", "channel": "email", "reason": "x"}
    assert (await client.post("/v1/suppressions", json=both, headers=admin)).status_code == 422
