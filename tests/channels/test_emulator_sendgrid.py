"""The emulator's SendGrid side: v3 mail send through the official SDK, and the signed Event Webhook."""

from __future__ import annotations

import base64
import json
import socket
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from python_http_client.exceptions import BadRequestsError, UnauthorizedError
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from sendgrid.helpers.mail import Category, Cc, CustomArg, Mail, Personalization, To

UNAUTHORIZED = {
    "errors": [
        {"message": "The provided authorization grant is invalid, expired, or revoked", "field": None, "help": None}
    ]
}
TEMPLATE_ID = "d-0123456789abcdef0123456789abcdef"


def plain_mail(to: str = "ava@example.com", **custom: str) -> Mail:
    mail = Mail(from_email="noreply@example.com", to_emails=to, subject="Your parcel", plain_text_content="On its way")
    for key, value in custom.items():
        mail.add_custom_arg(CustomArg(key, value))
    return mail


def verified_batches(sink: Any, public_key: str, count: int) -> list[list[dict[str, Any]]]:
    """Wait for `count` event batches; each must verify with sendgrid's own EventWebhook helper."""
    batches = []
    verifier = EventWebhook(public_key)
    for received in sink.wait_for(count, path="/events"):
        payload = received.body.decode()
        signature = received.headers[EventWebhookHeader.SIGNATURE]
        timestamp = received.headers[EventWebhookHeader.TIMESTAMP]
        assert received.headers["Content-Type"] == "application/json"
        assert verifier.verify_signature(payload, signature, timestamp)
        assert not verifier.verify_signature(payload.replace("@", "#", 1), signature, timestamp)
        assert not verifier.verify_signature(payload, signature, str(int(timestamp) + 1))
        batches.append(json.loads(payload))
    return batches


def test_keys_come_with_a_p256_event_webhook_key(emulator):
    key = emulator.create_sendgrid_key()
    assert key["api_key"].startswith("SG.") and key["api_key"].count(".") == 2
    public = load_der_public_key(base64.b64decode(key["event_webhook_public_key"]))
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    assert key["event_webhook_public_key"].startswith("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE")
    assert emulator.create_sendgrid_key()["event_webhook_public_key"] != key["event_webhook_public_key"]


def test_scopes_verify_a_key(emulator):
    key = emulator.create_sendgrid_key()["api_key"]
    ok = emulator.http.get("/v3/scopes", headers={"Authorization": f"Bearer {key}"})
    assert ok.status_code == 200 and "mail.send" in ok.json()["scopes"]
    for headers in ({"Authorization": "Bearer SG.nope.nope"}, {}, {"Authorization": f"Basic {key}"}):
        response = emulator.http.get("/v3/scopes", headers=headers)
        assert response.status_code == 401 and response.json() == UNAUTHORIZED


def test_sdk_send_then_signed_processed_and_delivered_events(emulator, callback_sink):
    key = emulator.create_sendgrid_key(callback_sink.url("/events"))
    response = emulator.sendgrid_client(key["api_key"]).send(plain_mail(notification_id="n1", attempt_id="a1"))
    assert response.status_code == 202 and response.body == b""
    message_id = response.headers.get("X-Message-Id")
    assert message_id and len(message_id) == 22

    processed, delivered = verified_batches(callback_sink, key["event_webhook_public_key"], 2)
    assert [e["event"] for e in processed] == ["processed"] and [e["event"] for e in delivered] == ["delivered"]
    for event in processed + delivered:
        assert event["email"] == "ava@example.com" and isinstance(event["timestamp"], int)
        assert event["sg_message_id"].split(".", 1)[0] == message_id and ".filter" in event["sg_message_id"]
        assert event["smtp-id"] == f"<{message_id}@ismtpd0001p1iad2.sendgrid.net>"
        assert event["notification_id"] == "n1" and event["attempt_id"] == "a1"  # custom_args, top-level
    assert processed[0]["sg_event_id"] != delivered[0]["sg_event_id"]
    assert processed[0]["sg_message_id"] == delivered[0]["sg_message_id"]
    assert callback_sink.received("/events")[0].body.endswith(b"\r\n")  # like SendGrid: verify the raw body

    emulator.wait_idle()
    (record,) = emulator.sendgrid_messages(key["api_key"])
    assert record["message_id"] == message_id and record["recipients"] == ["ava@example.com"]
    assert [e["event"] for e in record["events"]] == ["processed", "delivered"]
    assert [d["response_status"] for d in record["deliveries"]] == [200, 200]


def test_sdk_send_with_a_dynamic_template_and_several_recipients(emulator, callback_sink):
    key = emulator.create_sendgrid_key(callback_sink.url("/events"))
    mail = Mail(from_email="noreply@example.com")
    mail.template_id = TEMPLATE_ID
    personalization = Personalization()
    personalization.add_to(To("ava@example.com"))
    personalization.add_cc(Cc("bounce+1@example.com"))
    personalization.dynamic_template_data = {"name": "Ava"}
    personalization.add_custom_arg(CustomArg("notification_id", "n2"))
    mail.add_personalization(personalization)
    mail.add_category(Category("receipts"))
    response = emulator.sendgrid_client(key["api_key"]).send(mail)
    assert response.status_code == 202
    first, second = verified_batches(callback_sink, key["event_webhook_public_key"], 2)
    assert {(e["email"], e["event"]) for e in first} == {
        ("ava@example.com", "processed"),
        ("bounce+1@example.com", "processed"),
    }
    assert {(e["email"], e["event"]) for e in second} == {
        ("ava@example.com", "delivered"),
        ("bounce+1@example.com", "bounce"),
    }
    assert all(e["notification_id"] == "n2" and e["category"] == "receipts" for e in first + second)
    assert all(e["sg_template_id"] == TEMPLATE_ID for e in first + second)
    assert len({e["sg_message_id"] for e in first}) == 2  # one per recipient, same X-Message-Id prefix


@pytest.mark.parametrize(
    ("address", "events", "detail"),
    [
        ("bounce@example.com", ["processed", "bounce"], {"type": "bounce", "status": "5.1.1"}),
        ("blocked@example.com", ["processed", "bounce"], {"type": "blocked", "status": "5.7.1"}),
        ("dropped@example.com", ["dropped"], {"reason": "Bounced Address"}),
        ("deferred@example.com", ["processed", "deferred", "delivered"], {"attempt": "1"}),
        ("spamreport+7@example.com", ["processed", "delivered", "spamreport"], {}),
        ("Bounce@Example.com", ["processed", "bounce"], {"type": "bounce"}),
    ],
)
def test_magic_addresses(emulator, callback_sink, address, events, detail):
    key = emulator.create_sendgrid_key(callback_sink.url("/events"))
    assert emulator.sendgrid_client(key["api_key"]).send(plain_mail(address)).status_code == 202
    batches = verified_batches(callback_sink, key["event_webhook_public_key"], len(events))
    seen = [event for batch in batches for event in batch]
    assert [e["event"] for e in seen] == events
    outcome = seen[min(1, len(seen) - 1)]  # the event after "processed"
    assert {k: outcome.get(k) for k in detail} == detail
    emulator.wait_idle()
    assert len(callback_sink.received("/events")) == len(events)


def test_bad_key_gets_401(emulator):
    emulator.create_sendgrid_key()
    with pytest.raises(UnauthorizedError) as caught:
        emulator.sendgrid_client("SG.wrong.key").send(plain_mail())
    assert caught.value.status_code == 401 and caught.value.to_dict == UNAUTHORIZED
    response = emulator.http.post("/v3/mail/send", json={}, headers={})
    assert response.status_code == 401 and response.json() == UNAUTHORIZED
    assert emulator.sendgrid_messages() == []


GOOD = {
    "from": {"email": "noreply@example.com"},
    "subject": "s",
    "personalizations": [{"to": [{"email": "ava@example.com"}]}],
    "content": [{"type": "text/plain", "value": "x"}],
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"from": None}, "from.email"),
        ({"from": {"email": "not-an-address"}}, "from.email"),
        ({"personalizations": None}, "personalizations"),
        ({"personalizations": []}, "personalizations"),
        ({"personalizations": [{"to": []}]}, "personalizations.0.to"),
        ({"personalizations": [{"to": [{"email": "nope"}]}]}, "personalizations.0.to.0.email"),
        ({"personalizations": [{"to": [{"email": "a@b.co"}], "cc": [{"name": "x"}]}]}, "personalizations.0.cc.0.email"),
        ({"content": None}, "content"),
        ({"content": [{"type": "text/plain"}]}, "content.0.value"),
        ({"subject": None}, "subject"),
        ({"template_id": "not-a-guid", "content": None}, "template_id"),
        ({"custom_args": {"n": 1}}, "custom_args"),
        ({"categories": "one"}, "categories"),
    ],
)
def test_bad_mail_shapes_get_400(emulator, change, field):
    key = emulator.create_sendgrid_key()["api_key"]
    payload = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    response = emulator.http.post("/v3/mail/send", json=payload, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert field in [e["field"] for e in errors] and all(e["message"] for e in errors)
    with pytest.raises(BadRequestsError):
        client = emulator.sendgrid_client(key)
        client.client.mail.send.post(request_body=payload)
    assert emulator.sendgrid_messages() == []


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"null"])
def test_bodies_that_are_not_mail_get_400(emulator, body):
    key = emulator.create_sendgrid_key()["api_key"]
    response = emulator.http.post(
        "/v3/mail/send", content=body, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["errors"][0]["message"]


def test_template_or_every_personalization_subject_is_enough(emulator):
    key = emulator.create_sendgrid_key()["api_key"]
    headers = {"Authorization": f"Bearer {key}"}
    templated = {"from": GOOD["from"], "personalizations": GOOD["personalizations"], "template_id": TEMPLATE_ID}
    subjects = {**GOOD, "subject": None, "personalizations": [{"to": [{"email": "a@b.co"}], "subject": "hi"}]}
    for payload in (templated, {k: v for k, v in subjects.items() if v is not None}):
        response = emulator.http.post("/v3/mail/send", json=payload, headers=headers)
        assert response.status_code == 202 and response.headers["X-Message-Id"]


def test_events_wait_for_an_event_url(emulator, callback_sink):
    key = emulator.create_sendgrid_key()
    emulator.sendgrid_client(key["api_key"]).send(plain_mail())
    emulator.wait_idle()
    (record,) = emulator.sendgrid_messages()
    assert [e["event"] for e in record["events"]] == ["processed", "delivered"] and record["deliveries"] == []
    emulator.set_event_url(key["api_key"], callback_sink.url("/events"))
    emulator.sendgrid_client(key["api_key"]).send(plain_mail("bob@example.com"))
    batches = verified_batches(callback_sink, key["event_webhook_public_key"], 2)
    assert batches[0][0]["email"] == "bob@example.com"
    assert [m["recipients"] for m in emulator.sendgrid_messages(to="bob@example.com")] == [["bob@example.com"]]


def test_event_delivery_retries_once_and_survives_a_dead_target(emulator, callback_sink):
    key = emulator.create_sendgrid_key(callback_sink.url("/events"))
    callback_sink.respond(500, times=1, path="/events")
    emulator.sendgrid_client(key["api_key"]).send(plain_mail())
    got = callback_sink.wait_for(3, path="/events")
    assert got[0].body == got[1].body  # the same batch again, same signature
    assert got[0].headers[EventWebhookHeader.SIGNATURE] == got[1].headers[EventWebhookHeader.SIGNATURE]

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/events"
    emulator.set_event_url(key["api_key"], dead)
    assert emulator.sendgrid_client(key["api_key"]).send(plain_mail("c@example.com")).status_code == 202
    emulator.wait_idle()
    (record,) = emulator.sendgrid_messages(to="c@example.com")
    assert [[a["status_code"] for a in d["attempts"]] for d in record["deliveries"]] == [[None, None], [None, None]]
    assert "ConnectError" in record["deliveries"][0]["attempts"][0]["error"]
