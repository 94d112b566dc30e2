"""A template the sandbox refuses only at render time is a permanent failure of email: the
notification ends `failed` with the reason, never `queued` forever. And the chosen locale is a decision."""

from __future__ import annotations

from tests.support.gateway import notify, read, settle, wired_tenant


async def add_template(client, t, key: str, locales: dict, default_locale: str = "en") -> None:
    r = await client.post(
        "/v1/templates", json={"key": key, "default_locale": default_locale, "locales": locales}, headers=t.admin
    )
    assert r.status_code == 201, r.text


async def test_a_render_time_refusal_ends_the_notification_failed(client, emulator, gateway, worker):
    t = await wired_tenant(client, emulator, gateway)
    await add_template(
        client,
        t,
        "refused",
        {
            "en": {
                "whatsapp": {"content_sid": t.content_sid, "variables": ["name", "order"]},
                "email": {"subject": "Hi {{name}}", "text": "{{ name.__class__.__mro__ }} {{ order }}"},
            }
        },
    )
    email_only = await notify(
        client, t, template="refused", variables={"name": "Ava", "order": "1"}, channels=["email"]
    )
    # WhatsApp fails for good (invalid To), the fallback to email follows, and its render fails too.
    fell_back = await notify(
        client,
        t,
        template="refused",
        variables={"name": "Ava", "order": "2"},
        to={"phone": "+15005550001", "email": "ava@example.com"},
    )
    await settle(emulator)
    for nid in (email_only, fell_back):
        n = await read(client, t, nid)
        assert n["status"] == "failed", n
        email = next(a for a in n["attempts"] if a["channel"] == "email")
        assert email["status"] == "failed" and email["error_class"] == "render_failed"
        assert any(
            d["step"] == "email" and d["result"] == "render_failed" and "SecurityError" in d["detail"]
            for d in n["decisions"]
        ), n["decisions"]
    assert any(
        d["step"] == "fallback" and d["result"] == "email" for d in (await read(client, t, fell_back))["decisions"]
    )
    assert emulator.sendgrid_messages(api_key=t.sendgrid["api_key"]) == []


async def test_an_over_budget_email_template_fails_with_the_budget_reason(client, emulator, gateway, worker):
    t = await wired_tenant(client, emulator, gateway)
    await add_template(
        client,
        t,
        "hostile",
        {
            "en": {
                "email": {
                    "subject": "Hi {{name}}",
                    "text": "{% set x = name %}" + "{% set x = x ~ x %}" * 40 + "{{ x }}",
                }
            }
        },
    )
    nid = await notify(client, t, template="hostile", variables={"name": "Ava"}, channels=["email"])
    await settle(emulator)
    n = await read(client, t, nid)
    assert n["status"] == "failed" and n["attempts"][0]["error_class"] == "render_budget"
    assert any(d["step"] == "email" and d["result"] == "render_budget" for d in n["decisions"])


async def test_the_language_is_matched_before_the_default_and_the_choice_is_recorded(client, emulator, gateway, worker):
    t = await wired_tenant(client, emulator, gateway)
    await add_template(
        client,
        t,
        "greeting",
        {
            "en": {"email": {"subject": "Hello {{name}}", "text": "Hello"}},
            "pt-BR": {"email": {"subject": "Olá {{name}}", "text": "Olá"}},
        },
    )
    nid = await notify(
        client,
        t,
        template="greeting",
        variables={"name": "Ava"},
        channels=["email"],
        to={"email": "ava@example.com", "locale": "pt-PT"},
    )
    await settle(emulator)
    n = await read(client, t, nid)
    assert ("locale", "pt-BR", "requested pt-PT") in [(d["step"], d["result"], d["detail"]) for d in n["decisions"]]
    (mail,) = emulator.sendgrid_messages(api_key=t.sendgrid["api_key"])
    assert "Olá Ava" in str(mail)
