"""Conformance with the real peers (Twilio's schema, SDKs and signature vectors; SendGrid's) and the control API."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec
from litestar import Litestar, get
from litestar.testing import TestClient
from multidict import MultiDict
from sendgrid.helpers.eventwebhook import EventWebhook
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from channels.emulator import EmulatorState, create_emulator_app, emulator_router
from channels.emulator.callbacks import sendgrid_signature, twilio_signature
from channels.emulator.magic import TWILIO_MAGIC

# --- signature vectors (FACTS §1.5 and §7.4, verbatim) --------------------------------------------

TOKEN = "12345"
URI = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
    ("Caller", "+14158675309"),
]


@pytest.mark.parametrize(
    ("url", "params", "expected"),
    [
        (URI, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        (
            URI,
            [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234"), ("Digits", "1234")],
            "IK+Dwps556ElfBT0I3Rgjkr1wJU=",
        ),
        ("http://mycompany.com:1234/myapp.php?foo=1&bar=2", PARAMS, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
        ("https://mycompany.com:443/myapp.php?foo=1&bar=2", PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w="),
        ("http://mycompany.com:80/myapp.php?foo=1&bar=2", PARAMS, "0ZXoZLH/DfblKGATFgpif+LLRf4="),
        ("http://mycompany.com/myapp.php?foo=1&bar=2", PARAMS, "OyGYPqTF6ztdbRNCvuQO/oPvqQ4="),
    ],
)
def test_our_twilio_signing_reproduces_the_official_vectors(url, params, expected):
    assert twilio_signature(TOKEN, url, params) == expected


def test_the_official_validator_accepts_our_signatures_across_port_variants():
    validator = RequestValidator(TOKEN)
    signed_with_port = twilio_signature(TOKEN, "https://mycompany.com:1234/myapp.php?foo=1&bar=2", PARAMS)
    assert validator.validate("https://mycompany.com:1234/myapp.php?foo=1&bar=2", MultiDict(PARAMS), signed_with_port)
    signed = twilio_signature(TOKEN, URI, PARAMS)
    assert validator.validate("https://mycompany.com:1234/myapp.php?foo=1&bar=2", MultiDict(PARAMS), signed)
    assert validator.validate(
        "https://mycompany.com/myapp.php?foo=1&bar=2", MultiDict(PARAMS), "kvajT1Ptam85bY51eRf/AJRuM3w="
    )
    assert not validator.validate(URI, MultiDict([*PARAMS, ("Extra", "1")]), signed)


SG_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRa"
    "INXvVpiglSI8eNEc6wEA3F+g=="
)
SG_SIGNATURE = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
SG_PAYLOAD = (
    '[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address","sg_event_id":'
    '"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA","sg_message_id":'
    '"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0","smtp-id":'
    '"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]\r\n'
)


def test_sendgrid_official_vector_and_our_signing_agree_on_the_algorithm():
    assert EventWebhook(SG_PUBLIC_KEY).verify_signature(SG_PAYLOAD, SG_SIGNATURE, "1600112502")
    assert not EventWebhook(SG_PUBLIC_KEY).verify_signature(SG_PAYLOAD.rstrip(), SG_SIGNATURE, "1600112502")
    # ECDSA signatures are randomised, so ours cannot equal the vector; they must verify the same way.
    key = ec.generate_private_key(ec.SECP256R1())
    from cryptography.hazmat.primitives import serialization

    public = base64.b64encode(
        key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    signature = sendgrid_signature(key, "1600112502", SG_PAYLOAD)
    assert EventWebhook(public).verify_signature(SG_PAYLOAD, signature, "1600112502")
    assert not EventWebhook(SG_PUBLIC_KEY).verify_signature(SG_PAYLOAD, signature, "1600112502")


# --- every Message JSON validates against Twilio's schema ------------------------------------------


def test_every_message_json_validates_against_the_spec(emulator, callback_sink, twilio_schemas):
    account = emulator.create_account(inbound_url=callback_sink.url("/in"))
    auth = (account["api_key_sid"], account["api_key_secret"])
    url = f"/2010-04-01/Accounts/{account['account_sid']}/Messages.json"
    content_sid = emulator.create_template(account["account_sid"], ["1"])
    emulator.inbound(account["account_sid"], "+15550001111", "hi", media_url="https://cdn.test/a.jpg")
    forms = [
        {"To": "whatsapp:+15550001111", "From": account["whatsapp_from"], "Body": "free-form in the window"},
        {"To": "whatsapp:+15550002222", "From": account["whatsapp_from"], "Body": "free-form outside: 63016"},
        {"To": "whatsapp:+15550001111", "From": account["whatsapp_from"], "MediaUrl": "https://cdn.test/b.jpg"},
        {
            "To": "whatsapp:+15550002222",
            "MessagingServiceSid": account["messaging_service_sid"],
            "ContentSid": content_sid,
            "ContentVariables": '{"1": "Ava"}',
        },
        {"To": "whatsapp:+15005550007", "From": account["whatsapp_from"], "Body": "undelivered"},
        {
            "To": "whatsapp:US.13491208655302741918",
            "From": account["whatsapp_from"],
            "ContentSid": content_sid,
            "ContentVariables": '{"1": "Bo"}',
        },
    ]
    created = []
    for form in forms:
        response = emulator.http.post(url, data=form, auth=auth)
        assert response.status_code == 201, response.text
        twilio_schemas.message(response.json())
        created.append(response.json())
    emulator.wait_idle()
    statuses = set()
    for message in created:
        fetched = emulator.http.get(url[:-5] + f"/{message['sid']}.json", auth=auth).json()
        twilio_schemas.message(fetched)
        statuses.add(fetched["status"])
    assert statuses == {"read", "failed", "undelivered"}
    listing = emulator.http.get(url, auth=auth).json()
    twilio_schemas.message_list(listing)
    assert {m["direction"] for m in listing["messages"]} == {"inbound", "outbound-api"}
    assert len(listing["messages"]) == len(forms) + 1


def test_the_schema_check_has_teeth(twilio_schemas):
    import jsonschema

    good = {
        "account_sid": "AC" + "a" * 32,
        "api_version": "2010-04-01",
        "body": "x",
        "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
        "date_sent": None,
        "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": None,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": "SM" + "a" * 32,
        "status": "queued",
        "subresource_uris": {},
        "to": "whatsapp:+15550001111",
        "uri": "/x.json",
    }
    twilio_schemas.message(good)
    for bad in (
        {"num_media": 0},
        {"sid": "XX" + "a" * 32},
        {"status": "bogus"},
        {"date_created": "2023-08-24T05:01:45Z"},
        {"error_code": "63016"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            twilio_schemas.message({**good, **bad})


# --- the official SDKs, sync and async -----------------------------------------------------------


def test_sdk_with_account_sid_and_auth_token(emulator):
    account = emulator.create_account()
    client = emulator.twilio_client(account, api_key=False)
    content_sid = emulator.create_template(account["account_sid"], [])
    message = client.messages.create(
        to="whatsapp:+15550003333", from_=account["whatsapp_from"], content_sid=content_sid
    )
    assert message.status == "queued" and message.account_sid == account["account_sid"]
    assert message.num_media == "0" and message.date_created.year >= 2024  # the SDK parsed the RFC 2822 date


async def test_async_sdk_sends_fetches_and_lists(emulator, callback_sink):
    account = emulator.create_account()
    content_sid = emulator.create_template(account["account_sid"], ["1"])
    async with AsyncTwilioHttpClient() as http_client:
        client = Client(
            account["api_key_sid"], account["api_key_secret"], account["account_sid"], http_client=http_client
        )
        client.api.base_url = emulator.base_url
        message = await client.messages.create_async(
            to="whatsapp:+15550004444",
            from_=account["whatsapp_from"],
            content_sid=content_sid,
            content_variables=json.dumps({"1": "Ava"}),
            status_callback=callback_sink.url("/async"),
        )
        assert message.status == "queued" and re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
        callback_sink.wait_for(4, path="/async")
        fetched = await client.messages(message.sid).fetch_async()
        assert fetched.status == "read" and fetched.error_code is None
        listed = await client.messages.list_async(to="whatsapp:+15550004444")
        assert [m.sid for m in listed] == [message.sid]


# --- mounting ------------------------------------------------------------------------------------


def test_the_router_stays_out_of_openapi_and_keeps_peer_error_shapes_under_problem_json():
    from app.core.problems import EXCEPTION_HANDLERS

    @get("/hello", sync_to_thread=False)
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    app = Litestar(route_handlers=[hello, emulator_router()], exception_handlers=EXCEPTION_HANDLERS)
    assert set(app.openapi_schema.paths or {}) == {"/hello"}
    with TestClient(app) as client:
        account = client.post("/_emulator/twilio/accounts").json()
        response = client.post(
            f"/2010-04-01/Accounts/{account['account_sid']}/Messages.json",
            data={"To": "x"},
            auth=(account["account_sid"], "wrong"),
        )
        assert response.status_code == 401 and response.json()["code"] == 20003
        assert response.headers["content-type"] == "application/json"
        assert client.post("/v3/mail/send", json={}).json()["errors"][0]["field"] is None


def test_routing_errors_keep_each_peers_shape(emulator):
    twilio = emulator.http.get("/2010-04-01/Accounts/AC1/Calls.json")
    assert (
        twilio.status_code == 404
        and twilio.json()["code"] == 20404
        and set(twilio.json()) == {"code", "message", "more_info", "status"}
    )
    method = emulator.http.delete("/2010-04-01/Accounts/AC1.json")
    assert method.status_code == 405 and method.json()["code"] == 20004
    sendgrid = emulator.http.put("/v3/mail/send")
    assert sendgrid.status_code == 405 and sendgrid.json()["errors"][0]["field"] is None
    assert emulator.http.get("/_emulator/nothing").json() == {"error": "Not Found"}


def test_each_router_has_its_own_state():
    first, second = create_emulator_app(), create_emulator_app()
    with TestClient(first) as one, TestClient(second) as two:
        account = one.post("/_emulator/twilio/accounts").json()
        assert account["account_sid"] in first.state.emulator.accounts
        assert two.get("/_emulator/twilio/messages").json() == {"messages": []}
        assert not second.state.emulator.accounts
    shared = EmulatorState()
    assert create_emulator_app(shared).state.emulator is shared


def test_the_cli_command():
    from app.cli import main
    from app.emulator.cli import COMMANDS, emulator

    assert [emulator] == COMMANDS and main.get_command(None, "emulator") is emulator  # type: ignore[arg-type]
    result = CliRunner().invoke(main, ["emulator", "--help"])
    assert result.exit_code == 0 and "8025" in result.output and "--host" in result.output


def test_the_magic_table_is_the_documented_one():
    # Appended to, never renumbered: 10-12 came with issue 11 (ambiguous sends).
    assert sorted(TWILIO_MAGIC) == [f"+150055500{i:02d}" for i in range(1, 13)]
    docs = (Path(__file__).resolve().parents[2] / "docs" / "emulator.md").read_text()
    for number in TWILIO_MAGIC:
        assert number in docs


# --- the control API -----------------------------------------------------------------------------


def test_accounts_are_distinct_and_well_formed(emulator):
    accounts = [emulator.create_account() for _ in range(5)]
    for account in accounts:
        assert re.fullmatch(r"AC[0-9a-f]{32}", account["account_sid"])
        assert re.fullmatch(r"[0-9a-f]{32}", account["auth_token"])
        assert re.fullmatch(r"SK[0-9a-f]{32}", account["api_key_sid"]) and len(account["api_key_secret"]) >= 32
        assert re.fullmatch(r"whatsapp:\+1415523\d{4}", account["whatsapp_from"])
        assert re.fullmatch(r"MG[0-9a-f]{32}", account["messaging_service_sid"])
    for field in ("account_sid", "auth_token", "api_key_sid", "api_key_secret", "whatsapp_from"):
        assert len({a[field] for a in accounts}) == 5


def test_control_happy_paths(emulator, callback_sink):
    account = emulator.create_account(inbound_url=callback_sink.url("/a"), friendly_name="Acme")
    assert account["inbound_url"] == callback_sink.url("/a") and account["friendly_name"] == "Acme"
    assert emulator.set_inbound_url(account["account_sid"], callback_sink.url("/b"))["inbound_url"].endswith("/b")
    chosen = "HX" + "ab" * 16
    assert emulator.create_template(account["account_sid"], ["name"], content_sid=chosen) == chosen
    before = emulator.state.now()
    clock = emulator.advance(3600)
    assert clock["offset_seconds"] == 3600 and clock["now"] >= before + 3600
    status = emulator.http.get("/_emulator/status").json()
    assert status["offset_seconds"] == 3600 and status["config"]["slow_response_seconds"] == 30.0
    assert emulator.configure(callback_delay_seconds=0.01)["config"]["callback_delay_seconds"] == 0.01
    emulator.reset()
    assert emulator.messages() == [] and emulator.http.get("/_emulator/status").json()["offset_seconds"] == 0
    assert (
        emulator.http.get(
            f"/2010-04-01/Accounts/{account['account_sid']}.json", auth=(account["account_sid"], account["auth_token"])
        ).status_code
        == 401
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/_emulator/twilio/accounts", {"inbound_url": "not a url"}, 422),
        ("POST", "/_emulator/twilio/accounts", {"inbound_url": 5}, 422),
        ("POST", "/_emulator/twilio/accounts", {"unknown": 1}, 422),
        ("POST", "/_emulator/twilio/accounts", b"{oops", 400),
        ("POST", "/_emulator/twilio/accounts", [1], 422),
        ("PATCH", "/_emulator/twilio/accounts/AC" + "0" * 32, {"inbound_url": None}, 404),
        ("PATCH", "/_emulator/twilio/accounts/{account}", {}, 422),
        ("PATCH", "/_emulator/twilio/accounts/{account}", {"inbound_url": "ftp://x.test"}, 422),
        ("POST", "/_emulator/twilio/templates", {"account_sid": "AC" + "0" * 32}, 404),
        ("POST", "/_emulator/twilio/templates", {}, 422),
        ("POST", "/_emulator/twilio/templates", {"account_sid": "{account}", "content_sid": "HX1"}, 422),
        ("POST", "/_emulator/twilio/templates", {"account_sid": "{account}", "variables": "1"}, 422),
        ("POST", "/_emulator/twilio/templates", {"account_sid": "{account}", "variables": ["1", "1"]}, 422),
        ("POST", "/_emulator/twilio/templates", {"account_sid": "{account}", "content_sid": "{template}"}, 409),
        (
            "POST",
            "/_emulator/twilio/inbound",
            {"account_sid": "AC" + "0" * 32, "from": "+15550001111", "body": "x"},
            404,
        ),
        ("POST", "/_emulator/twilio/inbound", {"account_sid": "{account}", "from": "555", "body": "x"}, 422),
        ("POST", "/_emulator/twilio/inbound", {"account_sid": "{account}", "body": "x"}, 422),
        ("POST", "/_emulator/twilio/inbound", {"account_sid": "{account}", "from": "+15550001111"}, 422),
        (
            "POST",
            "/_emulator/twilio/inbound",
            {"account_sid": "{account}", "from": "+15550001111", "body": "x", "bsuid": "nope"},
            422,
        ),
        ("POST", "/_emulator/twilio/inbound", {"account_sid": "{account}", "body": "x", "hide_phone": True}, 422),
        (
            "POST",
            "/_emulator/twilio/inbound",
            {"account_sid": "{account}", "from": "+15550001111", "body": "x", "to": "whatsapp:abc"},
            422,
        ),
        (
            "POST",
            "/_emulator/twilio/inbound",
            {"account_sid": "{account}", "from": "+15550001111", "media_url": "file:///etc/passwd"},
            422,
        ),
        ("POST", "/_emulator/twilio/inbound", {"from": "+15550001111", "body": "x"}, 422),
        ("GET", "/_emulator/twilio/messages/SM" + "0" * 32, None, 404),
        ("POST", "/_emulator/sendgrid/keys", {"event_webhook_url": "nope"}, 422),
        ("PATCH", "/_emulator/sendgrid/keys/SG.nope.nope", {"event_webhook_url": None}, 404),
        ("PATCH", "/_emulator/sendgrid/keys/{key}", {"event_webhook_url": "nope"}, 422),
        ("PATCH", "/_emulator/sendgrid/keys/{key}", {}, 422),
        ("POST", "/_emulator/clock", {"advance_seconds": -1}, 422),
        ("POST", "/_emulator/clock", {"advance_seconds": "soon"}, 422),
        ("POST", "/_emulator/clock", {}, 422),
        ("POST", "/_emulator/config", {"slow_response_seconds": -1}, 422),
        ("POST", "/_emulator/config", {"speed": 2}, 422),
    ],
)
def test_control_api_bad_input_is_a_4xx_json_error(emulator, method, path, body, status):
    account = emulator.create_account()
    template = emulator.create_template(account["account_sid"], [])
    key = emulator.create_sendgrid_key()["api_key"]

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return (
                value.replace("{account}", account["account_sid"]).replace("{template}", template).replace("{key}", key)
            )
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    kwargs: dict[str, Any] = (
        {"content": body} if isinstance(body, bytes) else ({} if body is None else {"json": fill(body)})
    )
    response = emulator.http.request(method, fill(path), **kwargs)
    assert response.status_code == status, response.text
    assert isinstance(response.json()["error"], str) and response.json()["error"]
