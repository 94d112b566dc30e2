"""The Twilio WhatsApp adapter: the official SDK, through our http client, against the emulator."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC
from typing import Any

import pytest

from channels.base import ChannelError, FailureClass, TwilioCredentials, WhatsAppMessage
from channels.media import MediaGuard
from channels.signatures import validate_twilio_signature
from channels.twilio_whatsapp import (
    PooledTwilioHttpClient,
    TwilioWhatsApp,
    _retry_after,
    content_variables_json,
    create_kwargs,
    whatsapp_address,
)

REACHABLE = "+15551234567"


def creds_of(account: dict[str, Any], *, api_key: bool = False, version: int = 1) -> TwilioCredentials:
    if api_key:
        return TwilioCredentials(
            account["account_sid"], "", account["api_key_sid"], account["api_key_secret"], version=version
        )
    return TwilioCredentials(account["account_sid"], account["auth_token"], version=version)


def sent_form(emulator: Any, sid: str) -> list[tuple[str, str]]:
    return [tuple(pair) for pair in emulator.message(sid)["request"]]  # type: ignore[misc]


@pytest.fixture
async def adapter(emulator: Any) -> Any:
    twilio = TwilioWhatsApp(base_url=emulator.base_url, timeout=5)
    yield twilio
    await twilio.aclose()


@pytest.fixture
def account(emulator: Any) -> dict[str, Any]:
    return emulator.create_account(friendly_name="adapter tests")


# ---- the three kinds of message --------------------------------------------------------------


async def test_session_text(emulator: Any, adapter: TwilioWhatsApp, account: dict[str, Any]) -> None:
    emulator.inbound(account["account_sid"], from_=REACHABLE, body="hi")  # opens the 24h window
    result = await adapter.channel(creds_of(account)).send(
        WhatsAppMessage(
            to=REACHABLE,
            kind="session",
            from_=account["whatsapp_from"],
            body="Your code is 123456",
            status_callback="https://gw.test/webhooks/twilio/status?n=n1&a=a1",
        ),
    )
    assert result.provider_message_id.startswith("SM") and len(result.provider_message_id) == 34
    assert result.status == "queued"
    assert result.raw["sid"] == result.provider_message_id and result.raw["to"] == f"whatsapp:{REACHABLE}"
    form = sent_form(emulator, result.provider_message_id)
    assert dict(form) == {
        "To": f"whatsapp:{REACHABLE}",
        "From": whatsapp_address(account["whatsapp_from"]),
        "Body": "Your code is 123456",
        "StatusCallback": "https://gw.test/webhooks/twilio/status?n=n1&a=a1",
    }


async def test_media_with_caption(emulator: Any, adapter: TwilioWhatsApp, account: dict[str, Any]) -> None:
    result = await adapter.channel(creds_of(account, api_key=True)).send(
        WhatsAppMessage(
            to=REACHABLE,
            kind="media",
            from_=account["whatsapp_from"],
            media_url="https://cdn.example.com/a.jpg",
            body="your ticket",
        ),
    )
    assert result.provider_message_id.startswith("MM")
    form = sent_form(emulator, result.provider_message_id)
    assert ("MediaUrl", "https://cdn.example.com/a.jpg") in form and ("Body", "your ticket") in form
    assert [k for k, _ in form].count("MediaUrl") == 1


async def test_template_sends_content_sid_and_json_string_variables_only(
    emulator: Any, adapter: TwilioWhatsApp, account: dict[str, Any]
) -> None:
    content_sid = emulator.create_template(account["account_sid"], variables=("1", "2"))
    result = await adapter.channel(creds_of(account)).send(
        WhatsAppMessage(
            to="whatsapp:" + REACHABLE,
            kind="template",
            messaging_service_sid=account["messaging_service_sid"],
            content_sid=content_sid,
            content_variables={"1": "Ava", "2": 18473},
        ),
    )  # type: ignore[dict-item]
    assert result.status == "accepted"  # through a Messaging Service
    form = dict(sent_form(emulator, result.provider_message_id))
    assert set(form) == {"To", "MessagingServiceSid", "ContentSid", "ContentVariables"}  # no Body, MediaUrl, From
    assert form["To"] == f"whatsapp:{REACHABLE}"  # not double-prefixed
    assert json.loads(form["ContentVariables"]) == {"1": "Ava", "2": "18473"}
    emulator.wait_idle()
    record = emulator.message(result.provider_message_id)
    assert (record["status"], record["error_code"]) == ("read", None)  # every variable it expected was there


async def test_unknown_template_is_template_invalid(adapter: TwilioWhatsApp, account: dict[str, Any]) -> None:
    with pytest.raises(ChannelError) as caught:
        await adapter.channel(creds_of(account)).send(
            WhatsAppMessage(to=REACHABLE, kind="template", from_=account["whatsapp_from"], content_sid="HX" + "0" * 32),
        )
    assert (caught.value.failure, caught.value.code, caught.value.http_status) == (
        FailureClass.TEMPLATE_INVALID,
        "21655",
        400,
    )


# ---- magic numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "failure", "code", "status"),
    [
        ("+15005550001", FailureClass.INVALID_RECIPIENT, "21211", 400),
        ("+15005550002", FailureClass.OPTED_OUT, "21610", 400),
        ("+15005550003", FailureClass.RATE_LIMITED, "20429", 429),
        ("+15005550004", FailureClass.TRANSIENT, "20500", 500),
    ],
)
async def test_magic_numbers_classified(
    adapter: TwilioWhatsApp, account: dict[str, Any], to: str, failure: FailureClass, code: str, status: int
) -> None:
    message = WhatsAppMessage(to=to, kind="session", from_=account["whatsapp_from"], body="hello")
    with pytest.raises(ChannelError) as caught:
        await adapter.channel(creds_of(account)).send(message)
    assert (caught.value.failure, caught.value.code, caught.value.http_status) == (failure, code, status)
    assert caught.value.failure.retryable is (failure in (FailureClass.RATE_LIMITED, FailureClass.TRANSIENT))
    assert account["auth_token"] not in str(caught.value)


async def test_rate_limited_then_transient_recover(adapter: TwilioWhatsApp, account: dict[str, Any]) -> None:
    creds = creds_of(account)
    limited = WhatsAppMessage(to="+15005550003", kind="session", from_=account["whatsapp_from"], body="x")
    for _ in range(2):
        with pytest.raises(ChannelError) as caught:
            await adapter.channel(creds).send(limited)
        assert caught.value.failure is FailureClass.RATE_LIMITED
        assert caught.value.retry_after is None  # the emulator sends no Retry-After header
    assert (await adapter.channel(creds).send(limited)).provider_message_id.startswith("SM")
    flaky = WhatsAppMessage(to="+15005550004", kind="session", from_=account["whatsapp_from"], body="x")
    with pytest.raises(ChannelError, match="transient"):
        await adapter.channel(creds).send(flaky)
    assert (await adapter.channel(creds).send(flaky)).provider_message_id.startswith("SM")


async def test_slow_response_times_out_as_transient(emulator: Any, account: dict[str, Any]) -> None:
    emulator.configure(slow_response_seconds=4)  # the contract's 30 s, shortened so the server frees up
    twilio = TwilioWhatsApp(base_url=emulator.base_url, timeout=1)
    started = time.monotonic()
    try:
        with pytest.raises(ChannelError) as caught:
            await twilio.channel(creds_of(account)).send(
                WhatsAppMessage(to="+15005550005", kind="session", from_=account["whatsapp_from"], body="x"),
            )
    finally:
        await twilio.aclose()
    assert caught.value.failure is FailureClass.TRANSIENT
    assert "within 1s" in caught.value.message
    assert caught.value.ambiguous, "the request went out: Twilio may have created the message"
    assert 0.9 < time.monotonic() - started < 2.5


async def test_dropped_connection_is_ambiguous_and_refused_one_is_not(
    emulator: Any, adapter: TwilioWhatsApp, account: dict[str, Any]
) -> None:
    message = WhatsAppMessage(to="+15005550011", kind="session", from_=account["whatsapp_from"], body="x")
    with pytest.raises(ChannelError) as caught:
        await adapter.channel(creds_of(account)).send(message)  # the emulator read the request, then dropped it
    assert caught.value.failure is FailureClass.TRANSIENT and caught.value.ambiguous
    assert (await adapter.channel(creds_of(account)).send(message)).provider_message_id.startswith("SM")
    nowhere = TwilioWhatsApp(base_url="http://127.0.0.1:9", timeout=2)  # refused: nothing was sent
    try:
        with pytest.raises(ChannelError) as caught:
            await nowhere.channel(creds_of(account)).send(message)
    finally:
        await nowhere.aclose()
    assert caught.value.failure is FailureClass.TRANSIENT and not caught.value.ambiguous


async def test_rest_errors_are_not_ambiguous(adapter: TwilioWhatsApp, account: dict[str, Any]) -> None:
    with pytest.raises(ChannelError) as caught:
        await adapter.channel(creds_of(account)).send(
            WhatsAppMessage(to="+15005550004", kind="session", from_=account["whatsapp_from"], body="x"),
        )
    assert caught.value.http_status == 500 and not caught.value.ambiguous


async def test_validity_period_is_sent(emulator: Any, adapter: TwilioWhatsApp, account: dict[str, Any]) -> None:
    result = await adapter.channel(creds_of(account)).send(
        WhatsAppMessage(
            to="+15005550006", kind="session", from_=account["whatsapp_from"], body="x", validity_period=3600
        ),
    )
    assert ("ValidityPeriod", "3600") in sent_form(emulator, result.provider_message_id)
    with pytest.raises(ValueError, match="validity_period"):
        create_kwargs(WhatsAppMessage(to=REACHABLE, kind="session", from_="+1", body="x", validity_period=36001))


async def test_recent_messages_to_one_recipient_newest_first(
    emulator: Any, adapter: TwilioWhatsApp, account: dict[str, Any]
) -> None:
    from datetime import datetime, timedelta

    emulator.inbound(account["account_sid"], from_=REACHABLE, body="hi")
    emulator.inbound(account["account_sid"], from_="+15550001111", body="hi")
    creds = creds_of(account)
    sids = []
    for body in ("one", "two", "three"):
        sids.append(
            (
                await adapter.channel(creds).send(
                    WhatsAppMessage(to=REACHABLE, kind="session", from_=account["whatsapp_from"], body=body)
                )
            ).provider_message_id
        )
    await adapter.channel(creds).send(
        WhatsAppMessage(to="+15550001111", kind="session", from_=account["whatsapp_from"], body="x")
    )
    since = datetime.now(UTC) - timedelta(minutes=1)
    listed = await adapter.channel(creds).recent_messages(REACHABLE, since=since)
    outbound = [m for m in listed if m.direction == "outbound-api"]
    assert [m.sid for m in outbound] == sids[::-1] and [m.body for m in outbound] == ["three", "two", "one"]
    assert {m.to for m in listed} == {f"whatsapp:{REACHABLE}"} and len(listed) == 3  # inbound ones are To our sender
    assert all(m.date_created is not None and m.date_created.tzinfo for m in listed)
    assert outbound[0].from_ == whatsapp_address(account["whatsapp_from"])
    assert await adapter.channel(creds).recent_messages(REACHABLE, since=since + timedelta(hours=1)) == []
    assert len(await adapter.channel(creds).recent_messages(REACHABLE, since=since, limit=2)) == 2


async def test_recent_messages_failing_list_is_a_channel_error(
    adapter: TwilioWhatsApp, account: dict[str, Any]
) -> None:
    from datetime import datetime

    with pytest.raises(ChannelError) as caught:
        await adapter.channel(creds_of(account)).recent_messages("+15005550012", since=datetime.now(UTC))
    assert caught.value.failure is FailureClass.TRANSIENT and caught.value.http_status == 500


@pytest.mark.parametrize(
    ("to", "error_code", "status"),
    [
        ("+15005550006", 63016, "failed"),
        ("+15005550007", 30003, "undelivered"),
        ("+15005550009", 63024, "failed"),
    ],
)
async def test_callback_failures_reach_the_reconciler(
    emulator: Any,
    adapter: TwilioWhatsApp,
    account: dict[str, Any],
    callback_sink: Any,
    to: str,
    error_code: int,
    status: str,
) -> None:
    from channels.errors import classify_twilio

    creds = creds_of(account)
    result = await adapter.channel(creds).send(
        WhatsAppMessage(
            to=to,
            kind="session",
            from_=account["whatsapp_from"],
            body="x",
            status_callback=callback_sink.url("/status?n=1"),
        ),
    )
    emulator.wait_idle()
    fetched = await adapter.channel(creds).fetch(result.provider_message_id)
    assert (fetched.provider_message_id, fetched.status, fetched.raw["error_code"]) == (
        result.provider_message_id,
        status,
        error_code,
    )
    callbacks = callback_sink.received("/status")
    assert callbacks and callbacks[-1].form["ErrorCode"] == str(error_code)
    # the callback's ErrorCode goes through the very same table as a REST code
    assert classify_twilio(callbacks[-1].form["ErrorCode"]) is classify_twilio(error_code)
    # and the emulator's signature validates with our own code (pairs, repeated keys and all)
    for cb in callbacks:
        assert validate_twilio_signature(
            account["auth_token"], cb.url, list(cb.form.items()), cb.headers["X-Twilio-Signature"]
        )


# ---- credentials, accounts, fetch --------------------------------------------------------------


@pytest.mark.parametrize("api_key", [False, True])
async def test_bad_credentials(adapter: TwilioWhatsApp, account: dict[str, Any], api_key: bool) -> None:
    good = creds_of(account, api_key=api_key)
    bad = TwilioCredentials(
        good.account_sid, "wrong" if not api_key else "", good.api_key_sid, "wrong" if api_key else None, version=99
    )
    with pytest.raises(ChannelError) as caught:
        await adapter.channel(bad).send(
            WhatsAppMessage(to=REACHABLE, kind="session", from_=account["whatsapp_from"], body="x")
        )
    assert (caught.value.failure, caught.value.code, caught.value.http_status) == (
        FailureClass.BAD_CREDENTIALS,
        "20003",
        401,
    )
    with pytest.raises(ChannelError) as caught:
        await adapter.channel(bad).verify_credentials()
    assert caught.value.failure is FailureClass.BAD_CREDENTIALS
    assert (await adapter.channel(good).verify_credentials())["sid"] == account["account_sid"]


async def test_verify_account_unknown_and_unreachable(account: dict[str, Any], adapter: TwilioWhatsApp) -> None:
    stranger = TwilioCredentials("AC" + "f" * 32, account["auth_token"])
    with pytest.raises(ChannelError) as caught:
        await adapter.channel(stranger).verify_credentials()
    assert caught.value.failure is FailureClass.BAD_CREDENTIALS
    nowhere = TwilioWhatsApp(base_url="http://127.0.0.1:9", timeout=2)  # discard port: nothing listens
    try:
        with pytest.raises(ChannelError) as caught:
            await nowhere.channel(creds_of(account)).verify_credentials()
    finally:
        await nowhere.aclose()
    assert caught.value.failure is FailureClass.TRANSIENT and "could not reach Twilio" in caught.value.message


async def test_incomplete_credentials_never_fall_back_to_the_environment(
    monkeypatch: pytest.MonkeyPatch, adapter: TwilioWhatsApp, account: dict[str, Any]
) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", account["account_sid"])
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", account["auth_token"])
    with pytest.raises(ChannelError) as caught:
        await adapter.channel(TwilioCredentials(account["account_sid"], "")).verify_credentials()
    assert caught.value.failure is FailureClass.BAD_CREDENTIALS


async def test_fetch_unknown_message(adapter: TwilioWhatsApp, account: dict[str, Any]) -> None:
    with pytest.raises(ChannelError) as caught:
        await adapter.channel(creds_of(account)).fetch("SM" + "0" * 32)
    assert (caught.value.failure, caught.value.code, caught.value.http_status) == (FailureClass.PERMANENT, "20404", 404)


async def test_edge_and_region_do_not_break_the_override(
    monkeypatch: pytest.MonkeyPatch, emulator: Any, account: dict[str, Any]
) -> None:
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    twilio = TwilioWhatsApp(base_url=emulator.base_url, timeout=5)
    try:
        creds = creds_of(account)
        assert (await twilio.channel(creds).verify_credentials())["sid"] == account["account_sid"]
        result = await twilio.channel(creds).send(
            WhatsAppMessage(to=REACHABLE, kind="session", from_=account["whatsapp_from"], body="x")
        )
        assert emulator.message(result.provider_message_id)["sid"] == result.provider_message_id
        assert twilio.client(creds).region is None and twilio.client(creds).edge is None
    finally:
        await twilio.aclose()


async def test_without_override_edge_and_region_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    twilio = TwilioWhatsApp(timeout=5)
    try:
        client = twilio.client(TwilioCredentials("AC" + "a" * 32, "token"))
        assert client.region == "ie1"
        assert client.get_hostname("https://api.twilio.com/x") == "https://api.ie1.twilio.com/x"
    finally:
        await twilio.aclose()


# ---- client cache ------------------------------------------------------------------------------


async def test_clients_are_cached_per_credential_version_and_share_one_pool(
    adapter: TwilioWhatsApp, account: dict[str, Any]
) -> None:
    v1 = creds_of(account)
    first = adapter.client(v1)
    assert adapter.client(v1) is first
    v2 = creds_of(account, api_key=True, version=2)
    second = adapter.client(v2)
    assert second is not first and second.username == account["api_key_sid"]
    assert second.http_client is first.http_client  # one pooled session per loop
    assert adapter.client(v1) is not first  # v1 was replaced by v2, not kept beside it
    # the same version with a different secret is never served from the cache
    assert adapter.client(TwilioCredentials(v1.account_sid, "other-token")).password == "other-token"


async def test_clients_are_per_event_loop(emulator: Any, adapter: TwilioWhatsApp, account: dict[str, Any]) -> None:
    creds = creds_of(account)
    here = adapter.client(creds)

    async def elsewhere() -> tuple[Any, str]:
        try:
            client = adapter.client(creds)
            result = await adapter.channel(creds).send(
                WhatsAppMessage(to=REACHABLE, kind="session", from_=account["whatsapp_from"], body="x")
            )
            return client, result.provider_message_id
        finally:
            await adapter.aclose()

    other, sid = await asyncio.to_thread(asyncio.run, elsewhere())
    assert other is not here and other.http_client is not here.http_client
    assert sid.startswith("SM")
    # this loop's client still works after the other loop closed its own
    assert (await adapter.channel(creds).verify_credentials())["sid"] == account["account_sid"]


async def test_concurrent_sends_keep_their_own_responses(adapter: TwilioWhatsApp, account: dict[str, Any]) -> None:
    creds = creds_of(account)
    messages = [
        WhatsAppMessage(to=f"+1555123{i:04d}", kind="session", from_=account["whatsapp_from"], body=f"n{i}")
        for i in range(20)
    ]
    results = await asyncio.gather(*(adapter.channel(creds).send(m) for m in messages))
    assert [r.raw["to"] for r in results] == [f"whatsapp:{m.to}" for m in messages]
    assert len({r.provider_message_id for r in results}) == 20


# ---- media guard -----------------------------------------------------------------------------


async def test_media_guard_refuses_before_twilio_is_called(emulator: Any, account: dict[str, Any]) -> None:
    twilio = TwilioWhatsApp(base_url=emulator.base_url, timeout=5, media_guard=MediaGuard())
    try:
        with pytest.raises(ChannelError) as caught:
            await twilio.channel(creds_of(account)).send(
                WhatsAppMessage(
                    to=REACHABLE,
                    kind="media",
                    from_=account["whatsapp_from"],
                    media_url="https://169.254.169.254/latest/meta-data/",
                ),
            )
    finally:
        await twilio.aclose()
    assert caught.value.failure is FailureClass.MEDIA_INVALID
    assert emulator.messages(account_sid=account["account_sid"]) == []


# ---- pure helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("+15551234567", "whatsapp:+15551234567"),
        ("whatsapp:+15551234567", "whatsapp:+15551234567"),
        (" WhatsApp:+15551234567 ", "whatsapp:+15551234567"),
        ("US.1234567890", "whatsapp:US.1234567890"),
    ],
)
def test_whatsapp_address(given: str, expected: str) -> None:
    assert whatsapp_address(given) == expected


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (WhatsAppMessage(to=REACHABLE, kind="session", body="x"), "messaging_service_sid or from_"),
        (WhatsAppMessage(to=REACHABLE, kind="session", from_="+1"), "needs a body"),
        (
            WhatsAppMessage(to=REACHABLE, kind="session", from_="+1", body="x", media_url="https://a/b.jpg"),
            "must not set media_url",
        ),
        (WhatsAppMessage(to=REACHABLE, kind="media", from_="+1"), "needs a media_url"),
        (WhatsAppMessage(to=REACHABLE, kind="template", from_="+1"), "needs a content_sid"),
        (WhatsAppMessage(to=REACHABLE, kind="template", from_="+1", content_sid="HX1", body="x"), "must not set body"),
        (
            WhatsAppMessage(to=REACHABLE, kind="template", from_="+1", content_sid="HX1", media_url="https://a/b.jpg"),
            "must not set media_url",
        ),
        (WhatsAppMessage(to=REACHABLE, kind="sms", from_="+1", body="x"), "unknown WhatsApp message kind"),  # type: ignore[arg-type]
    ],
)
def test_malformed_messages_are_caller_bugs(message: WhatsAppMessage, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        create_kwargs(message)


def test_messaging_service_wins_over_from() -> None:
    kwargs = create_kwargs(
        WhatsAppMessage(
            to=REACHABLE, kind="session", from_="+14155238886", messaging_service_sid="MG" + "a" * 32, body="x"
        )
    )
    assert kwargs == {"to": f"whatsapp:{REACHABLE}", "messaging_service_sid": "MG" + "a" * 32, "body": "x"}


def test_content_variables_are_a_json_string_of_strings() -> None:
    text = content_variables_json({1: "Ava", "2": 3, "name": "Zoë"})
    assert isinstance(text, str) and json.loads(text) == {"1": "Ava", "2": "3", "name": "Zoë"}
    with pytest.raises(ValueError, match="'2' has no value"):
        content_variables_json({"1": "a", "2": None})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.twilio.com/2010-04-01/Accounts/AC1.json", "http://127.0.0.1:8025/2010-04-01/Accounts/AC1.json"),
        ("https://content.twilio.com/v1/Content?PageSize=5", "http://127.0.0.1:8025/v1/Content?PageSize=5"),
        ("https://api.dublin.ie1.twilio.com/2010-04-01/x", "http://127.0.0.1:8025/2010-04-01/x"),
        ("https://messaging.twilio.com/v1/Services", "http://127.0.0.1:8025/v1/Services"),
        ("https://example.com/x", "https://example.com/x"),
        ("https://twilio.com.evil.example/x", "https://twilio.com.evil.example/x"),
    ],
)
async def test_every_twilio_host_is_rewritten(url: str, expected: str) -> None:
    http = PooledTwilioHttpClient(timeout=1, base_url="http://127.0.0.1:8025/")
    try:
        assert http.rewrite(url) == expected
    finally:
        await http.close()
    prefixed = PooledTwilioHttpClient(timeout=1, base_url="http://emu.local/twilio")
    try:
        assert prefixed.rewrite("https://api.twilio.com/2010-04-01/x") == "http://emu.local/twilio/2010-04-01/x"
    finally:
        await prefixed.close()


def test_retry_after_parsing() -> None:
    assert _retry_after({"Retry-After": "7"}) == 7.0
    assert _retry_after({"Retry-After": "-3"}) == 0.0
    assert _retry_after({}) is None and _retry_after(None) is None
    assert _retry_after({"Retry-After": "soon"}) is None
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    assert 55 < (_retry_after({"Retry-After": future}) or 0) <= 60


# ---- Twilio-Request-Id and more_info (issue 14, part 5) ----------------------------------------


async def test_send_returns_the_request_id_the_emulator_sent(
    emulator: Any, adapter: TwilioWhatsApp, account: dict[str, Any]
) -> None:
    emulator.inbound(account["account_sid"], from_=REACHABLE, body="hi")
    result = await adapter.channel(creds_of(account)).send(
        WhatsAppMessage(to=REACHABLE, kind="session", from_=account["whatsapp_from"], body="hello")
    )
    recorded = emulator.message(result.provider_message_id)["request_id"]
    assert re.fullmatch(r"RQ[0-9a-f]{32}", recorded)
    assert result.request_id == recorded


async def test_a_refused_send_carries_request_id_and_more_info(
    adapter: TwilioWhatsApp, account: dict[str, Any]
) -> None:
    with pytest.raises(ChannelError) as caught:
        await adapter.channel(creds_of(account)).send(
            WhatsAppMessage(to="+15005550001", kind="session", from_=account["whatsapp_from"], body="x")
        )
    exc = caught.value
    assert exc.code == "21211" and exc.more_info == "https://www.twilio.com/docs/errors/21211"
    assert exc.request_id is not None and re.fullmatch(r"RQ[0-9a-f]{32}", exc.request_id)


async def test_each_request_gets_its_own_request_id(emulator: Any, account: dict[str, Any]) -> None:
    import base64

    import aiohttp

    url = f"{emulator.base_url}/2010-04-01/Accounts/{account['account_sid']}/Messages.json"
    basic = base64.b64encode(f"{account['account_sid']}:{account['auth_token']}".encode()).decode()
    auth = {"Authorization": f"Basic {basic}"}
    async with aiohttp.ClientSession() as http:
        ids = []
        for _ in range(2):
            async with http.get(url, headers=auth) as listed:
                assert listed.status == 200
                ids.append(listed.headers["Twilio-Request-Id"])
        async with http.post(url, headers=auth, data={"To": "whatsapp:+15005550001", "Body": "x"}) as refused:
            assert refused.status == 400
            ids.append(refused.headers["Twilio-Request-Id"])
    assert len(set(ids)) == 3 and all(re.fullmatch(r"RQ[0-9a-f]{32}", i) for i in ids)
