"""The emulator's Twilio side: accounts, Messages, the 24-hour window, callbacks, inbound, magic numbers."""

from __future__ import annotations

import json
import re
import socket
import time
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException

STATUS_FIELDS = {
    "AccountSid",
    "ApiVersion",
    "ChannelInstallSid",
    "ChannelPrefix",
    "ChannelToAddress",
    "From",
    "MessageSid",
    "MessageStatus",
    "SmsSid",
    "SmsStatus",
    "To",
}
USER = "+15557654321"


def messages_url(account: dict[str, Any]) -> str:
    return f"/2010-04-01/Accounts/{account['account_sid']}/Messages.json"


def send(emulator: Any, account: dict[str, Any], **form: Any) -> httpx.Response:
    """POST Messages.json with the API key, as the SDK would (repeated keys for lists)."""
    auth = (account["api_key_sid"], account["api_key_secret"])
    return emulator.http.post(messages_url(account), data=form, auth=auth)


def free_form(account: dict[str, Any], to: str, callback: str | None = None, **extra: Any) -> dict[str, Any]:
    form = {"To": f"whatsapp:{to}", "From": account["whatsapp_from"], "Body": "Your parcel is on its way", **extra}
    if callback:
        form["StatusCallback"] = callback
    return form


def final(emulator: Any, sid: str) -> dict[str, Any]:
    emulator.wait_idle()
    return emulator.message(sid)


def statuses(record: dict[str, Any]) -> list[str]:
    return [c["status"] for c in record["callbacks"]]


def assert_twilio_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    body = response.json()
    assert response.status_code == status
    assert set(body) == {"code", "message", "more_info", "status"}  # legacy shape, never type+title
    assert body["code"] == code and body["status"] == status and body["message"]
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    return body


# --- accounts and credentials -------------------------------------------------------------------


def test_account_fetch_with_auth_token_and_with_api_key(emulator, twilio_schemas):
    account = emulator.create_account(friendly_name="Acme")
    for user, password in (
        (account["account_sid"], account["auth_token"]),
        (account["api_key_sid"], account["api_key_secret"]),
    ):
        response = emulator.http.get(f"/2010-04-01/Accounts/{account['account_sid']}.json", auth=(user, password))
        assert response.status_code == 200
        body = response.json()
        twilio_schemas.account(body)
        assert body["sid"] == account["account_sid"] and body["friendly_name"] == "Acme"
        assert body["status"] == "active"


def test_sdk_fetches_the_account(emulator):
    account = emulator.create_account()
    fetched = emulator.twilio_client(account).api.v2010.accounts(account["account_sid"]).fetch()
    assert fetched.sid == account["account_sid"]
    assert fetched.status == "active"


@pytest.mark.parametrize(
    "case", ["wrong_token", "wrong_secret", "other_account", "no_auth", "garbage", "bearer", "unknown_account"]
)
def test_bad_credentials_get_401_20003(emulator, case):
    account, other = emulator.create_account(), emulator.create_account()
    sid = account["account_sid"]
    auth: Any = {
        "wrong_token": (sid, "0" * 32),
        "wrong_secret": (account["api_key_sid"], "nope"),
        "other_account": (other["api_key_sid"], other["api_key_secret"]),
        "unknown_account": (account["api_key_sid"], account["api_key_secret"]),
    }.get(case)
    headers = {"garbage": {"Authorization": "Basic !!!notbase64"}, "bearer": {"Authorization": "Bearer x"}}.get(
        case, {}
    )
    if case == "unknown_account":
        sid = "AC" + "0" * 32
    for response in (
        emulator.http.get(f"/2010-04-01/Accounts/{sid}.json", auth=auth, headers=headers),
        emulator.http.post(
            f"/2010-04-01/Accounts/{sid}/Messages.json",
            auth=auth,
            headers=headers,
            data={"To": "whatsapp:+15551112222", "Body": "x"},
        ),
        emulator.http.get(f"/2010-04-01/Accounts/{sid}/Messages.json", auth=auth, headers=headers),
    ):
        assert response.json() == {
            "code": 20003,
            "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401,
        }
        assert response.status_code == 401
    assert emulator.messages() == []


def test_sdk_surfaces_bad_credentials_as_twilio_rest_exception(emulator):
    account = emulator.create_account()
    client = emulator.twilio_client({**account, "api_key_secret": "wrong"})
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to="whatsapp:+15551112222", from_=account["whatsapp_from"], body="hi")
    assert caught.value.status == 401 and caught.value.code == 20003


# --- sending ------------------------------------------------------------------------------------


def test_sdk_template_send_goes_and_every_callback_is_signed(emulator, callback_sink, twilio_schemas):
    account = emulator.create_account()
    content_sid = emulator.create_template(account["account_sid"], ["1", "2"], body="Hi {{1}}, code {{2}}")
    message = emulator.twilio_client(account).messages.create(
        to=f"whatsapp:{USER}",
        from_=account["whatsapp_from"],
        content_sid=content_sid,
        content_variables=json.dumps({"1": "Ava", "2": "18473"}),
        status_callback=callback_sink.url("/status?n=7&a=1"),
    )
    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert message.status == "queued" and message.body == "Hi Ava, code 18473"
    assert message.from_ == account["whatsapp_from"] and message.to == f"whatsapp:{USER}"

    got = callback_sink.wait_for(4, path="/status")
    assert [r.form["MessageStatus"] for r in got] == ["queued", "sent", "delivered", "read"]
    assert [r.form.get("EventType") for r in got] == [None, None, "DELIVERED", "READ"]
    tokens = [r.headers["I-Twilio-Idempotency-Token"] for r in got]
    assert len(set(tokens)) == 4 and all(tokens)
    for received in got:
        assert received.path == "/status?n=7&a=1"
        assert received.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
        assert received.twilio_signature_valid(account["auth_token"])
        assert not received.twilio_signature_valid("f" * 32)
        assert set(received.form) >= STATUS_FIELDS
        assert received.form["MessageSid"] == message.sid and received.form["ChannelPrefix"] == "whatsapp"
        assert received.form["ChannelToAddress"] == USER
        assert received.form["SmsStatus"] == received.form["MessageStatus"]
        assert "EmulatorCallbackSeq" in received.form  # a field receivers don't know and must ignore

    record = final(emulator, message.sid)
    assert record["status"] == "read" and record["date_sent"] is not None and record["error_code"] is None
    assert [c["response_status"] for c in record["callbacks"]] == [200, 200, 200, 200]
    assert ["ContentSid", content_sid] in record["request"]
    twilio_schemas.message({k: record[k] for k in twilio_schemas.schemas["message"]["properties"]})


def test_messaging_service_send_is_accepted_with_no_from(emulator, callback_sink, twilio_schemas):
    account = emulator.create_account()
    content_sid = emulator.create_template(account["account_sid"], [])
    response = send(
        emulator,
        account,
        To=f"whatsapp:{USER}",
        MessagingServiceSid=account["messaging_service_sid"],
        ContentSid=content_sid,
        StatusCallback=callback_sink.url("/s"),
    )
    assert response.status_code == 201
    body = response.json()
    twilio_schemas.message(body)
    assert body["status"] == "accepted" and body["from"] is None and body["num_segments"] == "0"
    assert body["messaging_service_sid"] == account["messaging_service_sid"]
    got = callback_sink.wait_for(4, path="/s")
    assert all(r.form["MessagingServiceSid"] == account["messaging_service_sid"] for r in got)
    assert all(r.form["From"] == account["whatsapp_from"] for r in got)
    assert final(emulator, body["sid"])["from"] == account["whatsapp_from"]


def test_media_urls_arrive_as_repeated_keys(emulator, twilio_schemas):
    account = emulator.create_account()
    emulator.inbound(account["account_sid"], USER)
    response = send(
        emulator, account, **free_form(account, USER, MediaUrl=["https://cdn.test/a.jpg", "https://cdn.test/b.pdf"])
    )
    assert response.status_code == 201
    body = response.json()
    twilio_schemas.message(body)
    assert body["num_media"] == "2" and re.fullmatch(r"MM[0-9a-f]{32}", body["sid"])
    record = emulator.message(body["sid"])
    assert record["media_urls"] == ["https://cdn.test/a.jpg", "https://cdn.test/b.pdf"]
    assert [p for p in record["request"] if p[0] == "MediaUrl"] == [
        ["MediaUrl", "https://cdn.test/a.jpg"],
        ["MediaUrl", "https://cdn.test/b.pdf"],
    ]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"To": None}, 21604),
        ({"From": None}, 21603),
        ({"From": "whatsapp:+14155550000"}, 63007),
        ({"To": USER}, 21910),
        ({"To": "whatsapp:12345"}, 21211),
        ({"To": "whatsapp:+1"}, 21211),
        ({"Body": None}, 21619),
        ({"Body": "x" * 1601}, 21617),
        ({"MediaUrl": "ftp://cdn.test/a.jpg"}, 21620),
        ({"StatusCallback": "not a url"}, 21609),
        ({"StatusCallback": "https://bad_host.test/cb"}, 21609),
        ({"ContentSid": "HX123"}, 21655),
        ({"ContentSid": "HX" + "0" * 32}, 21655),
        ({"ContentVariables": '{"1": "x"}'}, 21656),
        ({"MessagingServiceSid": "MG" + "0" * 32}, 21701),
    ],
)
def test_bad_create_requests_get_twilio_400s(emulator, change, code):
    account = emulator.create_account()
    form = {k: v for k, v in {**free_form(account, USER), **change}.items() if v is not None}
    assert_twilio_error(send(emulator, account, **form), 400, code)
    assert emulator.messages() == []


@pytest.mark.parametrize("variables", ["{not json", '["Ava"]', '{"1": 5}'])
def test_bad_content_variables_get_21656(emulator, variables):
    account = emulator.create_account()
    content_sid = emulator.create_template(account["account_sid"], ["1"])
    response = send(
        emulator,
        account,
        To=f"whatsapp:{USER}",
        From=account["whatsapp_from"],
        ContentSid=content_sid,
        ContentVariables=variables,
    )
    assert_twilio_error(response, 400, 21656)


def test_another_accounts_template_is_invalid(emulator):
    account, other = emulator.create_account(), emulator.create_account()
    content_sid = emulator.create_template(other["account_sid"], [])
    response = send(emulator, account, To=f"whatsapp:{USER}", From=account["whatsapp_from"], ContentSid=content_sid)
    assert_twilio_error(response, 400, 21655)


def test_sdk_raises_on_rest_errors(emulator):
    account = emulator.create_account()
    with pytest.raises(TwilioRestException) as caught:
        emulator.twilio_client(account).messages.create(to=f"whatsapp:{USER}", from_=account["whatsapp_from"])
    assert caught.value.status == 400 and caught.value.code == 21619
    assert caught.value.msg.startswith("Unable to create record: ")


def test_template_variables_that_do_not_match_fail_63028(emulator):
    account = emulator.create_account()
    content_sid = emulator.create_template(account["account_sid"], ["1", "2"])
    response = send(
        emulator,
        account,
        To=f"whatsapp:{USER}",
        From=account["whatsapp_from"],
        ContentSid=content_sid,
        ContentVariables='{"1": "Ava"}',
    )
    assert response.status_code == 201
    record = final(emulator, response.json()["sid"])
    assert record["status"] == "failed" and record["error_code"] == 63028


# --- the 24-hour window -------------------------------------------------------------------------


def test_the_24_hour_window(emulator, callback_sink):
    account = emulator.create_account()

    def outcome() -> tuple[str, int | None, list[str]]:
        response = send(emulator, account, **free_form(account, USER, callback_sink.url("/w")))
        assert response.status_code == 201 and response.json()["status"] == "queued"
        record = final(emulator, response.json()["sid"])
        return record["status"], record["error_code"], statuses(record)

    # A user who never wrote in: the free-form message is accepted, then fails 63016.
    status, code, seen = outcome()
    assert (status, code, seen) == ("failed", 63016, ["queued", "failed"])
    failed = [r for r in callback_sink.received("/w") if r.form["MessageStatus"] == "failed"]
    assert failed[0].form["ErrorCode"] == "63016" and "outside the allowed window" in failed[0].form["ErrorMessage"]

    emulator.inbound(account["account_sid"], USER, "hello")
    assert outcome() == ("read", None, ["queued", "sent", "delivered", "read"])

    emulator.advance(23 * 3600)
    assert outcome()[0] == "read"

    emulator.advance(2 * 3600)  # 25 h after the user wrote
    assert outcome()[:2] == ("failed", 63016)

    content_sid = emulator.create_template(account["account_sid"], [])
    response = send(emulator, account, To=f"whatsapp:{USER}", From=account["whatsapp_from"], ContentSid=content_sid)
    assert final(emulator, response.json()["sid"])["status"] == "read"  # a template always goes


# --- messaging-limit tiers and MPS (FACTS §6.1) -------------------------------------------------------


def test_a_template_to_a_new_person_past_the_tier_is_undelivered_63018(emulator):
    account = emulator.create_account()
    content_sid = emulator.create_template(account["account_sid"], [])
    assert emulator.set_limits(account["account_sid"], tier=2)["tier"] == 2

    def template_to(user: str) -> tuple[str, int | None]:
        form = {"To": f"whatsapp:{user}", "From": account["whatsapp_from"], "ContentSid": content_sid}
        response = send(emulator, account, **form)
        assert response.status_code == 201  # accepted: the limit shows only in the callback
        record = final(emulator, response.json()["sid"])
        return record["status"], record["error_code"]

    assert template_to("+15550000001")[0] == "read"
    assert template_to("+15550000002")[0] == "read"
    assert template_to("+15550000003") == ("undelivered", 63018)  # a third person in 24 h
    assert template_to("+15550000001")[0] == "read"  # already in the 24 h set
    emulator.inbound(account["account_sid"], "+15550000004", "hi")
    assert template_to("+15550000004")[0] == "read"  # inside the window: not business-initiated
    assert (
        emulator._call("GET", f"/_emulator/twilio/accounts/{account['account_sid']}/limits")["open_conversations"] == 2
    )
    emulator.advance(24 * 3600 + 1)  # the first two turn 24 h old: room again
    assert template_to("+15550000003")[0] == "read"


def test_a_burst_over_the_senders_mps_is_undelivered_63018(emulator):
    account = emulator.create_account()
    emulator.set_limits(account["account_sid"], mps=1)
    emulator.inbound(account["account_sid"], USER, "hello")
    first = send(emulator, account, **free_form(account, USER)).json()["sid"]
    second = send(emulator, account, **free_form(account, USER)).json()["sid"]
    assert final(emulator, first)["status"] == "read"
    assert (final(emulator, second)["status"], final(emulator, second)["error_code"]) == ("undelivered", 63018)


@pytest.mark.parametrize("limits", [{"tier": 0}, {"mps": 0}, {"tier": "many"}, {"burst": 1}])
def test_bad_limits_are_a_422(emulator, limits):
    account = emulator.create_account()
    response = emulator.http.put(f"/_emulator/twilio/accounts/{account['account_sid']}/limits", json=limits)
    assert response.status_code == 422, response.text


def test_the_window_belongs_to_one_sender(emulator):
    account, other = emulator.create_account(), emulator.create_account()
    assert account["whatsapp_from"] != other["whatsapp_from"]
    emulator.inbound(other["account_sid"], USER)
    response = send(emulator, account, **free_form(account, USER))
    assert final(emulator, response.json()["sid"])["error_code"] == 63016


def test_a_username_user_opens_the_window_for_their_bsuid(emulator):
    account = emulator.create_account()
    bsuid = "US.13491208655302741918"
    result = emulator.inbound(account["account_sid"], None, "hi", bsuid=bsuid, hide_phone=True)
    assert result["opened_windows"] == [[account["whatsapp_from"], bsuid]]
    response = send(emulator, account, **free_form(account, bsuid))
    assert response.status_code == 201
    assert final(emulator, response.json()["sid"])["status"] == "read"
    emulator.configure(accept_bsuid_to=False)  # to test a gateway against a Twilio that refuses BSUID addresses
    assert_twilio_error(send(emulator, account, **free_form(account, bsuid)), 400, 21211)


# --- magic numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(("number", "code"), [("+15005550001", 21211), ("+15005550002", 21610)])
def test_magic_rest_400s(emulator, number, code):
    account = emulator.create_account()
    for _ in range(2):  # every time, not just once
        with pytest.raises(TwilioRestException) as caught:
            emulator.twilio_client(account).messages.create(
                to=f"whatsapp:{number}", from_=account["whatsapp_from"], body="hi"
            )
        assert caught.value.status == 400 and caught.value.code == code
    assert_twilio_error(send(emulator, account, **free_form(account, number)), 400, code)
    assert emulator.messages() == []


def test_magic_429_twice_per_message_then_success(emulator):
    account = emulator.create_account()
    number = "+15005550003"
    first = [send(emulator, account, **free_form(account, number)) for _ in range(3)]
    for response in first[:2]:
        assert_twilio_error(response, 429, 20429)
    assert first[2].status_code == 201
    # Counted per message (account + To + content): a new message gets its own two 429s.
    other = [send(emulator, account, **free_form(account, number, Body="another message")) for _ in range(3)]
    assert [r.status_code for r in other] == [429, 429, 201]
    again = [send(emulator, account, **free_form(account, number)) for _ in range(3)]
    assert [r.status_code for r in again] == [429, 429, 201]
    assert len(emulator.messages(to=number)) == 3
    with pytest.raises(TwilioRestException) as caught:
        emulator.twilio_client(account).messages.create(
            to=f"whatsapp:{number}", from_=account["whatsapp_from"], body="via sdk"
        )
    assert caught.value.status == 429 and caught.value.code == 20429


def test_magic_500_once_then_success(emulator):
    account = emulator.create_account()
    number = "+15005550004"
    responses = [send(emulator, account, **free_form(account, number)) for _ in range(2)]
    assert_twilio_error(responses[0], 500, 20500)
    assert responses[1].status_code == 201
    # The window is not consulted for magic numbers: it is delivered.
    assert final(emulator, responses[1].json()["sid"])["status"] == "read"
    assert [send(emulator, account, **free_form(account, number, Body="b")).status_code for _ in range(2)] == [500, 201]


def test_magic_slow_response(emulator):
    account = emulator.create_account()
    assert emulator.state.slow_response_seconds == 30.0  # the documented default
    emulator.configure(slow_response_seconds=1.0)
    form = free_form(account, "+15005550005")
    with pytest.raises(httpx.ReadTimeout):
        emulator.http.post(
            messages_url(account), data=form, auth=(account["account_sid"], account["auth_token"]), timeout=0.3
        )
    # The message was taken although the client gave up: exactly the ambiguity a client must survive.
    assert len(emulator.messages(to="+15005550005")) == 1
    started = time.monotonic()
    response = send(emulator, account, **form)
    assert response.status_code == 201 and time.monotonic() - started >= 1.0
    assert response.json()["status"] == "queued"


@pytest.mark.parametrize(
    ("number", "status", "code", "sequence"),
    [
        ("+15005550006", "failed", 63016, ["queued", "failed"]),
        ("+15005550007", "undelivered", 30003, ["queued", "sent", "undelivered"]),
        ("+15005550009", "failed", 63024, ["queued", "failed"]),
    ],
)
def test_magic_callback_failures(emulator, callback_sink, number, status, code, sequence):
    account = emulator.create_account()
    emulator.inbound(account["account_sid"], number)  # an open window changes nothing
    content_sid = emulator.create_template(account["account_sid"], [])
    for form in (
        free_form(account, number, callback_sink.url("/f")),
        {
            "To": f"whatsapp:{number}",
            "From": account["whatsapp_from"],
            "ContentSid": content_sid,
            "StatusCallback": callback_sink.url("/f"),
        },
    ):
        response = send(emulator, account, **form)
        assert response.status_code == 201
        record = final(emulator, response.json()["sid"])
        assert (record["status"], record["error_code"], statuses(record)) == (status, code, sequence)
        assert record["error_message"]
    last = callback_sink.received("/f")[-1]
    assert last.form["MessageStatus"] == status and last.form["ErrorCode"] == str(code)
    assert last.form["ErrorMessage"] and last.twilio_signature_valid(account["auth_token"])


def test_magic_duplicated_out_of_order_callbacks(emulator, callback_sink):
    account = emulator.create_account()
    response = send(emulator, account, **free_form(account, "+15005550008", callback_sink.url("/d")))
    got = callback_sink.wait_for(6, path="/d")
    assert [r.form["MessageStatus"] for r in got] == ["queued", "sent", "read", "read", "delivered", "delivered"]
    assert all(r.twilio_signature_valid(account["auth_token"]) for r in got)
    # Each duplicate is a separate webhook with its own token: dedupe on (MessageSid, MessageStatus) too.
    assert len({r.headers["I-Twilio-Idempotency-Token"] for r in got}) == 6
    assert final(emulator, response.json()["sid"])["status"] == "read"


def test_other_numbers_behave_like_real_users(emulator):
    account = emulator.create_account()
    emulator.inbound(account["account_sid"], "+15005550099")
    response = send(emulator, account, **free_form(account, "+15005550099"))
    assert final(emulator, response.json()["sid"])["status"] == "read"


# --- callback delivery --------------------------------------------------------------------------


def test_a_5xx_callback_is_retried_once_with_the_same_token(emulator, callback_sink):
    account = emulator.create_account()
    emulator.inbound(account["account_sid"], USER)
    callback_sink.respond(503, times=1, path="/r")
    response = send(emulator, account, **free_form(account, USER, callback_sink.url("/r")))
    got = callback_sink.wait_for(5, path="/r")
    assert got[0].form["MessageStatus"] == got[1].form["MessageStatus"] == "queued"
    assert got[0].headers["I-Twilio-Idempotency-Token"] == got[1].headers["I-Twilio-Idempotency-Token"]
    assert got[0].body == got[1].body and all(r.twilio_signature_valid(account["auth_token"]) for r in got)
    record = final(emulator, response.json()["sid"])
    assert [a["status_code"] for a in record["callbacks"][0]["attempts"]] == [503, 200]
    assert record["callbacks"][0]["response_status"] == 200


def test_connection_overrides_in_the_fragment(emulator, callback_sink):
    account = emulator.create_account()
    emulator.inbound(account["account_sid"], USER)
    callback_sink.respond(500, path="/o")
    response = send(emulator, account, **free_form(account, USER, callback_sink.url("/o?x=1#rc=0&ct=1000")))
    record = final(emulator, response.json()["sid"])
    assert all(len(c["attempts"]) == 1 and c["response_status"] == 500 for c in record["callbacks"])
    got = callback_sink.received("/o")
    assert len(got) == 4 and got[0].path == "/o?x=1"  # the fragment is never sent...
    assert got[0].twilio_signature_valid(account["auth_token"])  # ...nor signed


def test_a_dead_callback_target_is_recorded_and_harmless(emulator, twilio_schemas):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/cb"
    account = emulator.create_account()
    emulator.inbound(account["account_sid"], USER)
    response = send(emulator, account, **free_form(account, USER, dead))
    record = final(emulator, response.json()["sid"])
    assert record["status"] == "read" and len(record["callbacks"]) == 4
    for callback in record["callbacks"]:
        assert [a["status_code"] for a in callback["attempts"]] == [None, None]  # tried, retried once
        assert "ConnectError" in callback["attempts"][0]["error"]
    assert send(emulator, account, **free_form(account, USER)).status_code == 201  # still serving


# --- reading messages back ----------------------------------------------------------------------


def test_fetch_message_and_404s(emulator, twilio_schemas):
    account, other = emulator.create_account(), emulator.create_account()
    emulator.inbound(account["account_sid"], USER)
    created = send(emulator, account, **free_form(account, USER)).json()
    emulator.wait_idle()
    fetched = emulator.twilio_client(account).messages(created["sid"]).fetch()
    assert fetched.status == "read" and fetched.sid == created["sid"]
    raw = emulator.http.get(
        f"{messages_url(account)[:-5]}/{created['sid']}.json", auth=(account["account_sid"], account["auth_token"])
    )
    twilio_schemas.message(raw.json())
    for who, sid in ((account, "SM" + "0" * 32), (other, created["sid"])):
        response = emulator.http.get(
            f"{messages_url(who)[:-5]}/{sid}.json", auth=(who["api_key_sid"], who["api_key_secret"])
        )
        body = assert_twilio_error(response, 404, 20404)
        assert sid in body["message"]


def test_magic_slow_response_sends_no_callback_before_its_answer(emulator, callback_sink):
    account = emulator.create_account()
    emulator.configure(slow_response_seconds=1.5)
    form = free_form(account, "+15005550005", callback=callback_sink.url("/status?a=1"))
    with pytest.raises(httpx.ReadTimeout):
        emulator.http.post(
            messages_url(account), data=form, auth=(account["account_sid"], account["auth_token"]), timeout=0.5
        )
    (message,) = emulator.messages(to="+15005550005")  # it exists, and a list shows it ...
    assert message["history"] == [] and callback_sink.received() == []  # ... but nothing has moved or called back
    got = callback_sink.wait_for(4, path="/status")  # the usual callbacks, once the late answer is out
    assert [r.form["MessageStatus"] for r in got] == ["queued", "sent", "delivered", "read"]


def test_magic_late_answer_and_no_callback_at_all(emulator, callback_sink):
    account = emulator.create_account()
    emulator.configure(slow_response_seconds=0.5)
    response = send(emulator, account, **free_form(account, "+15005550010", callback=callback_sink.url("/status")))
    assert response.status_code == 201
    record = final(emulator, response.json()["sid"])
    assert record["status"] == "read" and [h["status"] for h in record["history"]][-1] == "read"
    assert record["callbacks"] == [] and callback_sink.received() == []


def test_magic_dropped_connection_creates_nothing_then_succeeds(emulator):
    account = emulator.create_account()
    form = free_form(account, "+15005550011")
    with pytest.raises(httpx.RemoteProtocolError):  # the request was read; not a byte came back
        send(emulator, account, **form)
    assert emulator.messages(to="+15005550011") == []
    assert send(emulator, account, **form).status_code == 201
    assert len(emulator.messages(to="+15005550011")) == 1


def test_magic_list_fails_for_its_number(emulator):
    account = emulator.create_account()
    auth = (account["api_key_sid"], account["api_key_secret"])
    emulator.configure(slow_response_seconds=0.1)
    assert send(emulator, account, **free_form(account, "+15005550012")).status_code == 201
    assert_twilio_error(
        emulator.http.get(messages_url(account), params={"To": "whatsapp:+15005550012"}, auth=auth), 500, 20500
    )
    assert len(emulator.http.get(messages_url(account), auth=auth).json()["messages"]) == 1


def test_validity_period_is_checked_and_kept(emulator):
    account = emulator.create_account()
    emulator.inbound(account["account_sid"], "+15550000009")
    response = send(emulator, account, **free_form(account, "+15550000009", ValidityPeriod="3600"))
    assert response.status_code == 201 and emulator.message(response.json()["sid"])["validity_period"] == 3600
    for bad in ("0", "36001", "soon"):
        assert_twilio_error(
            send(emulator, account, **free_form(account, "+15550000009", ValidityPeriod=bad)), 400, 20001
        )


def test_list_filters_and_pages(emulator, twilio_schemas):
    account = emulator.create_account()
    auth = (account["api_key_sid"], account["api_key_secret"])
    for user in ("+15550000001", "+15550000002", "+15550000003"):
        emulator.inbound(account["account_sid"], user)
        send(emulator, account, **free_form(account, user))
    emulator.wait_idle()
    emulator.advance(2 * 86400)
    emulator.inbound(account["account_sid"], "+15550000004")
    send(emulator, account, **free_form(account, "+15550000004"))
    emulator.wait_idle()
    client = emulator.twilio_client(account)

    everything = client.messages.list(page_size=2)
    assert len(everything) == 8  # four inbound, four outbound, across four pages
    assert [m.sid for m in everything] == [m["sid"] for m in reversed(emulator.messages(account["account_sid"]))]
    assert [m.to for m in client.messages.list(to="whatsapp:+15550000002")] == ["whatsapp:+15550000002"]
    assert {m.direction for m in client.messages.list(from_=account["whatsapp_from"])} == {"outbound-api"}

    today = emulator.messages(to="+15550000004")[0]
    sent_day = time.strftime("%Y-%m-%d", time.gmtime(emulator.state.now()))
    first_day = time.strftime("%Y-%m-%d", time.gmtime(emulator.state.now() - 2 * 86400))
    by_day = emulator.http.get(messages_url(account), params={"DateSent": sent_day}, auth=auth).json()
    twilio_schemas.message_list(by_day)
    assert {m["sid"] for m in by_day["messages"]} >= {today["sid"]} and len(by_day["messages"]) == 2
    before = emulator.http.get(messages_url(account), params={"DateSent<": first_day}, auth=auth).json()
    after = emulator.http.get(messages_url(account), params={"DateSent>": sent_day}, auth=auth).json()
    assert len(before["messages"]) == 6 and len(after["messages"]) == 2

    page = emulator.http.get(messages_url(account), params={"PageSize": 3}, auth=auth).json()
    twilio_schemas.message_list(page)
    assert (page["page"], page["page_size"], page["start"], page["end"]) == (0, 3, 0, 2)
    assert page["next_page_uri"].startswith(messages_url(account) + "?") and page["previous_page_uri"] is None
    second = emulator.http.get(page["next_page_uri"], auth=auth).json()
    assert second["page"] == 1 and second["previous_page_uri"] is not None
    assert not {m["sid"] for m in page["messages"]} & {m["sid"] for m in second["messages"]}
    assert_twilio_error(
        emulator.http.get(messages_url(account), params={"DateSent": "yesterday"}, auth=auth), 400, 20001
    )


# --- inbound messages ---------------------------------------------------------------------------


def test_inbound_webhook_is_signed_and_complete(emulator, callback_sink):
    account = emulator.create_account(inbound_url=callback_sink.url("/in?tenant=acme"))
    twiml = "<?xml version='1.0' encoding='UTF-8'?><Response/>"
    callback_sink.respond(200, twiml, content_type="text/xml", path="/in")
    result = emulator.inbound(account["account_sid"], USER, "Where is my parcel?", profile_name="Ava")
    assert result["webhook"]["response_status"] == 200 and result["webhook"]["response_body"] == twiml
    (received,) = callback_sink.received("/in")
    assert received.twilio_signature_valid(account["auth_token"])
    assert received.headers["I-Twilio-Idempotency-Token"]
    form = received.form
    assert form["From"] == f"whatsapp:{USER}" and form["To"] == account["whatsapp_from"]
    assert form["WaId"] == USER[1:] and form["ProfileName"] == "Ava" and form["Body"] == "Where is my parcel?"
    assert form["SmsStatus"] == "received" and form["NumMedia"] == "0" and form["MessageType"] == "text"
    assert form["MessageSid"] == form["SmsSid"] == form["SmsMessageSid"] == result["message_sid"]
    assert form["AccountSid"] == account["account_sid"] and form["ApiVersion"] == "2010-04-01"
    assert "ExternalUserId" not in form and "MediaUrl0" not in form
    assert json.loads(form["ChannelMetadata"])["data"]["context"]["WaId"] == USER[1:]


def test_inbound_media(emulator, callback_sink):
    account = emulator.create_account(inbound_url=callback_sink.url("/in"))
    emulator.inbound(account["account_sid"], USER, "", media_url="https://cdn.test/photo.png")
    form = callback_sink.wait_for(1, path="/in")[0].form
    assert (form["NumMedia"], form["MediaUrl0"], form["MediaContentType0"], form["MessageType"]) == (
        "1",
        "https://cdn.test/photo.png",
        "image/png",
        "image",
    )
    emulator.inbound(
        account["account_sid"], USER, "", media_url="https://cdn.test/f", media_content_type="application/pdf"
    )
    form = callback_sink.wait_for(2, path="/in")[1].form
    assert (form["MediaContentType0"], form["MessageType"]) == ("application/pdf", "document")
    assert callback_sink.received("/in")[1].twilio_signature_valid(account["auth_token"])


def test_inbound_from_a_user_with_a_bsuid(emulator, callback_sink):
    account = emulator.create_account(inbound_url=callback_sink.url("/in"))
    emulator.inbound(account["account_sid"], USER, "hi", bsuid="US.13491208655302741918")
    received = callback_sink.wait_for(1, path="/in")[0]
    assert received.form["ExternalUserId"] == "whatsapp:US.13491208655302741918"
    assert received.form["From"] == f"whatsapp:{USER}" and received.form["WaId"] == USER[1:]
    assert received.twilio_signature_valid(account["auth_token"])


def test_inbound_from_a_username_user_who_hides_their_phone(emulator, callback_sink):
    account = emulator.create_account(inbound_url=callback_sink.url("/in"))
    emulator.inbound(account["account_sid"], USER, "STOP", bsuid="US.ENT.11815799212886844830", hide_phone=True)
    received = callback_sink.wait_for(1, path="/in")[0]
    assert received.form["From"] == "whatsapp:US.ENT.11815799212886844830"
    assert received.form["ExternalUserId"] == "whatsapp:US.ENT.11815799212886844830"
    assert "WaId" not in received.form and USER[1:] not in received.body.decode()
    assert received.twilio_signature_valid(account["auth_token"])


def test_inbound_prefixless_from(emulator, callback_sink):
    account = emulator.create_account(inbound_url=callback_sink.url("/in"))
    emulator.inbound(account["account_sid"], USER, "hi", prefixless=True)
    assert callback_sink.wait_for(1, path="/in")[0].form["From"] == USER


def test_inbound_webhook_retry_and_no_url(emulator, callback_sink):
    account = emulator.create_account(inbound_url=callback_sink.url("/in"))
    callback_sink.respond(502, times=1, path="/in")
    result = emulator.inbound(account["account_sid"], USER)
    assert [a["status_code"] for a in result["webhook"]["attempts"]] == [502, 200]
    first, second = callback_sink.received("/in")
    assert first.headers["I-Twilio-Idempotency-Token"] == second.headers["I-Twilio-Idempotency-Token"]

    emulator.set_inbound_url(account["account_sid"], None)
    result = emulator.inbound(account["account_sid"], "+15550009999")
    assert result["webhook"] is None and len(callback_sink.received("/in")) == 2
    response = send(emulator, account, **free_form(account, "+15550009999"))  # the window opened all the same
    assert final(emulator, response.json()["sid"])["status"] == "read"
    inbound = emulator.message(result["message_sid"])
    assert inbound["direction"] == "inbound" and inbound["status"] == "received"
