"""The SendGrid adapter: the official SDK against the emulator (and the callback sink for faults)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sendgrid.helpers.eventwebhook import EventWebhook

from channels.base import ChannelError, EmailMessage, FailureClass, FetchUnsupported, SendgridCredentials
from channels.sendgrid_email import SendGridEmail, _retry_after, build_mail
from channels.signatures import verify_sendgrid_event


@pytest.fixture
def key(emulator: Any) -> dict[str, Any]:
    return emulator.create_sendgrid_key()


def creds(key: dict[str, Any]) -> SendgridCredentials:
    return SendgridCredentials(api_key=key["api_key"], from_email="noreply@acme.test", from_name="Acme")


async def test_send_text_and_html(emulator: Any, key: dict[str, Any]) -> None:
    result = (
        await SendGridEmail(host=emulator.base_url, timeout=5)
        .channel(creds(key))
        .send(
            EmailMessage(
                to="ava@example.com",
                subject="Your code",
                text="123456",
                html="<b>123456</b>",
                custom_args={"notification_id": "n1", "attempt_id": "a1"},
            ),
        )
    )
    assert result.status == "accepted" and result.provider_message_id
    [mail] = emulator.sendgrid_messages(api_key=key["api_key"])
    assert mail["message_id"] == result.provider_message_id  # our id is the X-Message-Id
    sent = mail["request"]
    assert sent["from"] == {"email": "noreply@acme.test", "name": "Acme"}
    assert sent["personalizations"] == [{"to": [{"email": "ava@example.com"}]}]
    assert sent["subject"] == "Your code"
    assert sent["content"] == [
        {"type": "text/plain", "value": "123456"},
        {"type": "text/html", "value": "<b>123456</b>"},
    ]
    assert sent["custom_args"] == {"notification_id": "n1", "attempt_id": "a1"}


async def test_send_dynamic_template(emulator: Any, key: dict[str, Any]) -> None:
    data = {"name": "Ava", "items": [{"sku": 1}]}
    result = (
        await SendGridEmail(host=emulator.base_url, timeout=5)
        .channel(creds(key))
        .send(
            EmailMessage(
                to="ava@example.com",
                template_id="d-0123456789abcdef0123456789abcdef",
                dynamic_template_data=data,
                custom_args={"notification_id": "n2"},
            ),
        )
    )
    [mail] = emulator.sendgrid_messages(api_key=key["api_key"])
    assert mail["message_id"] == result.provider_message_id
    sent = mail["request"]
    assert sent["template_id"] == "d-0123456789abcdef0123456789abcdef"
    assert sent["personalizations"][0]["dynamic_template_data"] == data
    assert "content" not in sent and "subject" not in sent
    assert sent["custom_args"] == {"notification_id": "n2"}


async def test_events_carry_our_ids_and_verify(emulator: Any, key: dict[str, Any], callback_sink: Any) -> None:
    emulator.set_event_url(key["api_key"], callback_sink.url("/sendgrid/events"))
    result = (
        await SendGridEmail(host=emulator.base_url, timeout=5)
        .channel(creds(key))
        .send(EmailMessage(to="ava@example.com", subject="s", text="t", custom_args={"notification_id": "n3"}))
    )
    emulator.wait_idle()
    batches = callback_sink.received("/sendgrid/events")
    assert batches
    for batch in batches:
        signature = batch.headers["X-Twilio-Email-Event-Webhook-Signature"]
        timestamp = batch.headers["X-Twilio-Email-Event-Webhook-Timestamp"]
        assert verify_sendgrid_event(key["event_webhook_public_key"], batch.body, signature, timestamp)
        assert EventWebhook(key["event_webhook_public_key"]).verify_signature(batch.body.decode(), signature, timestamp)
        for event in batch.json():
            assert event["sg_message_id"].split(".", 1)[0] == result.provider_message_id
            assert event["notification_id"] == "n3"


async def test_bad_key_is_bad_credentials(emulator: Any) -> None:
    adapter = SendGridEmail(host=emulator.base_url, timeout=5)
    wrong = SendgridCredentials(api_key="SG.not-a-real-key", from_email="noreply@acme.test")
    with pytest.raises(ChannelError) as caught:
        await adapter.channel(wrong).send(EmailMessage(to="ava@example.com", subject="s", text="t"))
    assert (caught.value.failure, caught.value.http_status) == (FailureClass.BAD_CREDENTIALS, 401)
    assert "SG.not-a-real-key" not in str(caught.value)
    with pytest.raises(ChannelError) as caught:
        await adapter.channel(wrong).verify_credentials()
    assert (caught.value.failure, caught.value.http_status) == (FailureClass.BAD_CREDENTIALS, 401)


async def test_verify_key(emulator: Any, key: dict[str, Any]) -> None:
    verified = await SendGridEmail(host=emulator.base_url, timeout=5).channel(creds(key)).verify_credentials()
    assert "mail.send" in verified["scopes"]
    assert emulator.sendgrid_messages(api_key=key["api_key"]) == []  # verifying sends nothing


async def test_missing_key_never_falls_back_to_the_environment(
    monkeypatch: pytest.MonkeyPatch, emulator: Any, key: dict[str, Any]
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", key["api_key"])
    with pytest.raises(ChannelError) as caught:
        await SendGridEmail(host=emulator.base_url).channel(SendgridCredentials(api_key="")).verify_credentials()
    assert caught.value.failure is FailureClass.BAD_CREDENTIALS


@pytest.mark.parametrize(
    ("status", "body", "failure"),
    [
        (400, {"errors": [{"field": "from", "message": "The from object must be provided"}]}, FailureClass.PERMANENT),
        (
            403,
            {"errors": [{"message": "The from address does not match a verified Sender Identity"}]},
            FailureClass.BAD_CREDENTIALS,
        ),
        (413, {"errors": [{"message": "payload too large"}]}, FailureClass.PERMANENT),
        (429, {"errors": [{"message": "too many requests"}]}, FailureClass.RATE_LIMITED),
        (500, {"errors": [{"message": "internal error"}]}, FailureClass.TRANSIENT),
        (503, "<html>maintenance</html>", FailureClass.TRANSIENT),
    ],
)
async def test_http_failures_classified(callback_sink: Any, status: int, body: Any, failure: FailureClass) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    callback_sink.respond(status=status, body=text, content_type="application/json")
    adapter = SendGridEmail(host=callback_sink.base_url, timeout=5)
    with pytest.raises(ChannelError) as caught:
        await adapter.channel(SendgridCredentials("SG.k", "noreply@acme.test")).send(
            EmailMessage(to="ava@example.com", subject="s", text="t")
        )
    assert (caught.value.failure, caught.value.http_status) == (failure, status)
    if isinstance(body, dict):
        assert caught.value.message == body["errors"][0]["message"]
    else:
        assert caught.value.message == f"SendGrid answered HTTP {status}"
    [request] = callback_sink.received("/v3/mail/send")
    assert request.headers["Authorization"] == "Bearer SG.k"


async def test_timeout_is_transient(callback_sink: Any) -> None:
    callback_sink.respond(status=202, delay=3)
    adapter = SendGridEmail(host=callback_sink.base_url, timeout=1)
    started = time.monotonic()
    with pytest.raises(ChannelError) as caught:
        await adapter.channel(SendgridCredentials("SG.k", "noreply@acme.test")).send(
            EmailMessage(to="ava@example.com", subject="s", text="t")
        )
    assert caught.value.failure is FailureClass.TRANSIENT and "within 1s" in caught.value.message
    assert time.monotonic() - started < 2.5


async def test_unreachable_is_transient() -> None:
    adapter = SendGridEmail(host="http://127.0.0.1:9", timeout=2)  # discard port: nothing listens
    with pytest.raises(ChannelError) as caught:
        await adapter.channel(SendgridCredentials("SG.k", "noreply@acme.test")).verify_credentials()
    assert caught.value.failure is FailureClass.TRANSIENT and "could not reach SendGrid" in caught.value.message


async def test_accepted_without_message_id_is_refused(callback_sink: Any) -> None:
    callback_sink.respond(status=202)
    with pytest.raises(ChannelError, match="without an X-Message-Id"):
        await (
            SendGridEmail(host=callback_sink.base_url)
            .channel(SendgridCredentials("SG.k", "noreply@acme.test"))
            .send(EmailMessage(to="a@b.test", subject="s", text="t"))
        )


async def test_key_without_mail_send_scope(callback_sink: Any) -> None:
    callback_sink.respond(status=200, body=json.dumps({"scopes": ["stats.read"]}), content_type="application/json")
    with pytest.raises(ChannelError) as caught:
        await SendGridEmail(host=callback_sink.base_url).channel(SendgridCredentials("SG.k")).verify_credentials()
    assert caught.value.failure is FailureClass.BAD_CREDENTIALS and "mail.send" in caught.value.message


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (EmailMessage(to="a@b.test"), "template_id, or a subject"),
        (EmailMessage(to="a@b.test", subject="s"), "template_id, or a subject"),
        (EmailMessage(to="a@b.test", text="t"), "template_id, or a subject"),
    ],
)
def test_malformed_messages_are_caller_bugs(message: EmailMessage, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        build_mail(SendgridCredentials("SG.k", "noreply@acme.test"), message)
    with pytest.raises(ValueError, match="from_email"):
        build_mail(SendgridCredentials("SG.k"), EmailMessage(to="a@b.test", subject="s", text="t"))


def test_html_only_and_explicit_template_subject() -> None:
    html_only = build_mail(
        SendgridCredentials("SG.k", "n@a.test"), EmailMessage(to="a@b.test", subject="s", html="<p>h</p>")
    ).get()
    assert html_only["content"] == [{"type": "text/html", "value": "<p>h</p>"}]
    templated = build_mail(
        SendgridCredentials("SG.k", "n@a.test"), EmailMessage(to="a@b.test", subject="Override", template_id="d-1")
    ).get()
    assert templated["subject"] == "Override" and templated["template_id"] == "d-1"


def test_retry_after_parsing() -> None:
    assert _retry_after({"Retry-After": "12"}) == 12.0
    reset = str(int(time.time()) + 30)
    assert 28 <= (_retry_after({"X-RateLimit-Reset": reset}) or 0) <= 30
    assert _retry_after({}) is None and _retry_after(None) is None
    assert _retry_after({"X-RateLimit-Reset": "soon"}) is None


async def test_fetch_is_unsupported_and_says_so(emulator: Any, key: dict[str, Any]) -> None:
    """Mail Send gives no per-message read: fetch is a classified, permanent FetchUnsupported, sent nowhere."""
    with pytest.raises(FetchUnsupported) as caught:
        await SendGridEmail(host=emulator.base_url, timeout=5).channel(creds(key)).fetch("abc123")
    assert caught.value.failure is FailureClass.PERMANENT and "SendGrid" in caught.value.message
