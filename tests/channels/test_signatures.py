"""Our signature code against the official vectors (FACTS §1.5, §7.4, Standard Webhooks) and,
property-wise, against the official implementations themselves."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from multidict import MultiDict
from sendgrid.helpers.eventwebhook import EventWebhook
from twilio.request_validator import RequestValidator

from channels.signatures import (
    HMAC_SHA1,
    HMAC_SHA256,
    compute_twilio_signature,
    generate_webhook_secret,
    load_sendgrid_public_key,
    sendgrid_public_key_b64,
    sign_sendgrid_event,
    sign_standard_webhook,
    twilio_signature_algorithm,
    validate_twilio_signature,
    verify_sendgrid_event,
    verify_standard_webhook,
)

# ---- Twilio: twilio-python tests/unit/test_request_validator.py, verbatim ----------------------
TOKEN = "12345"
URI = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
EXPECTED = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
DUPLICATE_PAIRS = [
    ("Sid", "CA123"),
    ("SidAccount", "AC123"),
    ("Digits", "5678"),
    ("Digits", "1234"),
    ("Digits", "1234"),
]
DUPLICATE_EXPECTED = "IK+Dwps556ElfBT0I3Rgjkr1wJU="
BODY = '{"property": "value", "boolean": true}'
BODY_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
URI_WITH_BODY = URI + "&bodySHA256=" + BODY_HASH


def test_compute_signature_official_vector() -> None:
    assert compute_twilio_signature(TOKEN, URI, PARAMS) == EXPECTED
    assert compute_twilio_signature(TOKEN, URI, list(PARAMS.items())) == EXPECTED


def test_param_order_does_not_matter() -> None:
    assert compute_twilio_signature(TOKEN, URI, list(reversed(PARAMS.items()))) == EXPECTED


def test_compute_signature_duplicate_keys_official_vector() -> None:
    assert compute_twilio_signature(TOKEN, URI, DUPLICATE_PAIRS) == DUPLICATE_EXPECTED
    assert validate_twilio_signature(TOKEN, URI, DUPLICATE_PAIRS, DUPLICATE_EXPECTED)
    # dropping the duplicate changes nothing (values are de-duplicated), dropping a value does
    assert validate_twilio_signature(TOKEN, URI, DUPLICATE_PAIRS[:-1], DUPLICATE_EXPECTED)
    assert not validate_twilio_signature(TOKEN, URI, DUPLICATE_PAIRS[:-2], DUPLICATE_EXPECTED)


def test_validation_official_vector() -> None:
    assert validate_twilio_signature(TOKEN, URI, PARAMS, EXPECTED)


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        ("https://mycompany.com:1234/myapp.php?foo=1&bar=2", EXPECTED),  # removes port, https
        (
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
        ),  # hash of http uri with port
        ("https://mycompany.com/myapp.php?foo=1&bar=2", "kvajT1Ptam85bY51eRf/AJRuM3w="),  # adds port 443
        ("http://mycompany.com/myapp.php?foo=1&bar=2", "0ZXoZLH/DfblKGATFgpif+LLRf4="),  # adds port 80
    ],
)
def test_port_variants_official_vectors(url: str, signature: str) -> None:
    assert validate_twilio_signature(TOKEN, url, PARAMS, signature)
    assert RequestValidator(TOKEN).validate(url, PARAMS, signature)  # the oracle agrees


def test_body_hash_official_vectors() -> None:
    assert hashlib.sha256(BODY.encode()).hexdigest() == BODY_HASH
    assert validate_twilio_signature(TOKEN, URI_WITH_BODY, None, "a9nBmqA0ju/hNViExpshrM61xv4=", body=BODY)
    assert validate_twilio_signature(TOKEN, URI_WITH_BODY, None, "a9nBmqA0ju/hNViExpshrM61xv4=", body=BODY.encode())
    assert not validate_twilio_signature(TOKEN, URI_WITH_BODY, None, "a9nBmqA0ju/hNViExpshrM61xv4=", body=BODY + " ")


def test_derived_vectors_from_facts() -> None:
    assert (
        compute_twilio_signature(TOKEN, "http://mycompany.com/myapp.php?foo=1&bar=2", PARAMS)
        == "OyGYPqTF6ztdbRNCvuQO/oPvqQ4="
    )
    sha256 = "033hgUJA9M/hXIZsYjwkerEP/DBm35nEri5FhCYjA5s="
    assert compute_twilio_signature(TOKEN, URI, PARAMS, HMAC_SHA256) == sha256
    assert validate_twilio_signature(TOKEN, URI, PARAMS, sha256, algorithm="HMAC_SHA256")
    assert validate_twilio_signature(TOKEN, URI, PARAMS, sha256, algorithm="hmac_sha256")
    assert not validate_twilio_signature(TOKEN, URI, PARAMS, sha256)  # read as SHA-1: no


@pytest.mark.parametrize(
    ("header", "algorithm"),
    [
        (None, HMAC_SHA1),
        ("", HMAC_SHA1),
        ("key=webhooks_sharedkey_1", HMAC_SHA1),
        ("key=webhooks_sharedkey_1,algorithm=HMAC_SHA256", HMAC_SHA256),
        (" algorithm = HMAC_SHA256 , key=k", HMAC_SHA256),
        ("algorithm=", HMAC_SHA1),
    ],
)
def test_signature_settings_header(header: str | None, algorithm: str) -> None:
    from twilio.request_validator import get_signature_algorithm

    assert twilio_signature_algorithm(header) == algorithm == get_signature_algorithm(header)


@pytest.mark.parametrize(
    "signature",
    [None, "", "RSOYDt4T1cUTdK1PDd93/VVr8B8", "rsoydt4t1cutdk1pdd93/vvr8b8=", "RSOYDt4T1cUTdK1PDd93/VVr8B8=é"],
)
def test_wrong_or_missing_signatures_fail(signature: str | None) -> None:
    assert not validate_twilio_signature(TOKEN, URI, PARAMS, signature)


def test_unknown_algorithm_and_bad_ports_fail_closed() -> None:
    assert not validate_twilio_signature(TOKEN, URI, PARAMS, EXPECTED, algorithm="HMAC_MD5")
    with pytest.raises(ValueError):
        compute_twilio_signature(TOKEN, URI, PARAMS, "HMAC_MD5")
    assert not validate_twilio_signature(TOKEN, "https://mycompany.com:notaport/x", PARAMS, EXPECTED)
    assert not validate_twilio_signature(TOKEN, "https://mycompany.com:99999/x", PARAMS, EXPECTED)


def test_wrong_token_fails() -> None:
    assert not validate_twilio_signature("54321", URI, PARAMS, EXPECTED)


# Property: agree with RequestValidator everywhere, and any change breaks the signature.
_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_name = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
_pairs = st.lists(st.tuples(_name, _text), max_size=8)
_url = st.builds(
    lambda scheme, host, port, path, query: f"{scheme}://{host}{port}/{path}{query}",
    st.sampled_from(["https", "http"]),
    st.sampled_from(["gw.example.com", "hooks.tenant.io", "127.0.0.1"]),
    st.sampled_from(["", ":8443", ":443", ":80"]),
    st.text(alphabet="abcxyz/._-", max_size=12),
    st.sampled_from(["", "?n=1", "?n=1&a=%20b", "?attempt=a1&notification=n1"]),
)
_algorithm = st.sampled_from([HMAC_SHA1, HMAC_SHA256])


@settings(max_examples=300, deadline=None)
@given(token=st.text(min_size=1, max_size=32), url=_url, pairs=_pairs, algorithm=_algorithm)
def test_agrees_with_twilio_request_validator(
    token: str, url: str, pairs: list[tuple[str, str]], algorithm: str
) -> None:
    oracle = RequestValidator(token)
    multi = MultiDict(pairs)
    ours = compute_twilio_signature(token, url, pairs, algorithm)
    assert ours == oracle.compute_signature(url, multi, algorithm)
    assert validate_twilio_signature(token, url, pairs, ours, algorithm=algorithm)
    assert oracle.validate(url, multi, ours, algorithm)


@settings(max_examples=300, deadline=None)
@given(token=st.text(min_size=1, max_size=32), url=_url, pairs=_pairs, algorithm=_algorithm, data=st.data())
def test_any_change_invalidates(
    token: str, url: str, pairs: list[tuple[str, str]], algorithm: str, data: st.DataObject
) -> None:
    signature = compute_twilio_signature(token, url, pairs, algorithm)
    changed_url = url + data.draw(st.sampled_from(["x", "&x=1", "/"]), label="url suffix")
    assert not validate_twilio_signature(token, changed_url, pairs, signature, algorithm=algorithm)
    extra = data.draw(st.tuples(_name, _text), label="added pair")
    assume(extra not in pairs)
    assert not validate_twilio_signature(token, url, [*pairs, extra], signature, algorithm=algorithm)
    if pairs:
        index = data.draw(st.integers(0, len(pairs) - 1), label="changed pair")
        name, value = pairs[index]
        tampered = [*pairs[:index], (name, value + "!"), *pairs[index + 1 :]]
        assume((name, value + "!") not in pairs)
        assert not validate_twilio_signature(token, url, tampered, signature, algorithm=algorithm)
        removed = [p for p in pairs if p != (name, value)]
        assert not validate_twilio_signature(token, url, removed, signature, algorithm=algorithm)


# ---- SendGrid: sendgrid-python test/unit/test_eventwebhook.py, verbatim ----------------------
SG_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3"
    "GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
SG_SIGNATURE = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
SG_TIMESTAMP = "1600112502"
SG_PAYLOAD = (
    json.dumps(
        [
            {
                "email": "hello@world.com",
                "event": "dropped",
                "reason": "Bounced Address",
                "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
                "sg_message_id": "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
                "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
                "timestamp": 1600112492,
            }
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    + "\r\n"
)
SG_BAD_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntl"
    "o7aNDthvj+y7GjUuFDb/R1NGe1OPzpA=="
)
SG_BAD_SIGNATURE = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j/0="


def test_sendgrid_official_vector() -> None:
    assert verify_sendgrid_event(SG_PUBLIC_KEY, SG_PAYLOAD.encode(), SG_SIGNATURE, SG_TIMESTAMP)


@pytest.mark.parametrize(
    ("key", "payload", "signature", "timestamp"),
    [
        (SG_BAD_KEY, SG_PAYLOAD, SG_SIGNATURE, SG_TIMESTAMP),
        (SG_PUBLIC_KEY, "payload", SG_SIGNATURE, SG_TIMESTAMP),
        (SG_PUBLIC_KEY, SG_PAYLOAD, SG_BAD_SIGNATURE, SG_TIMESTAMP),
        (SG_PUBLIC_KEY, SG_PAYLOAD, SG_SIGNATURE, "timestamp"),
        (SG_PUBLIC_KEY, SG_PAYLOAD.rstrip("\r\n"), SG_SIGNATURE, SG_TIMESTAMP),  # the CRLF is signed
        (SG_PUBLIC_KEY, SG_PAYLOAD, "not base64!", SG_TIMESTAMP),
        (SG_PUBLIC_KEY, SG_PAYLOAD, "", SG_TIMESTAMP),
        (SG_PUBLIC_KEY, SG_PAYLOAD, SG_SIGNATURE, ""),
    ],
)
def test_sendgrid_official_negative_cases(key: str, payload: str, signature: str, timestamp: str) -> None:
    assert not verify_sendgrid_event(key, payload.encode(), signature, timestamp)


def test_sendgrid_max_age() -> None:
    payload = SG_PAYLOAD.encode()
    assert verify_sendgrid_event(
        SG_PUBLIC_KEY, payload, SG_SIGNATURE, SG_TIMESTAMP, max_age_seconds=600, now=1600112502 + 599
    )
    assert not verify_sendgrid_event(
        SG_PUBLIC_KEY, payload, SG_SIGNATURE, SG_TIMESTAMP, max_age_seconds=600, now=1600112502 + 601
    )


@pytest.mark.parametrize(
    "key",
    [
        "not base64!",
        base64.b64encode(b"not a key").decode(),
        # a valid P-384 key is still the wrong curve
        None,
    ],
)
def test_sendgrid_malformed_public_key_is_a_config_error(key: str | None) -> None:
    if key is None:
        key = sendgrid_public_key_b64(ec.generate_private_key(ec.SECP384R1()))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        load_sendgrid_public_key(key)


@settings(max_examples=25, deadline=None)
@given(
    payload=st.binary(max_size=200).map(lambda b: base64.b64encode(b) + b"\r\n"),
    timestamp=st.integers(1_500_000_000, 2_000_000_000).map(str),
)
def test_sendgrid_sign_verifies_with_the_official_helper(payload: bytes, timestamp: str) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public_b64 = sendgrid_public_key_b64(private)
    signature = sign_sendgrid_event(private, payload, timestamp)
    assert EventWebhook(public_b64).verify_signature(payload.decode(), signature, timestamp)
    assert verify_sendgrid_event(public_b64, payload, signature, timestamp)
    assert not verify_sendgrid_event(public_b64, payload + b" ", signature, timestamp)
    assert not verify_sendgrid_event(public_b64, payload, signature, str(int(timestamp) + 1))


# ---- Standard Webhooks: the spec repo's signing vector (libraries/go/webhook_test.go) ----------
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_standard_webhooks_official_vector() -> None:
    assert sign_standard_webhook(SW_SECRET, SW_ID, SW_TIMESTAMP, SW_BODY) == SW_EXPECTED
    # the prefix is optional, as in the reference libraries
    assert sign_standard_webhook(SW_SECRET.removeprefix("whsec_"), SW_ID, SW_TIMESTAMP, SW_BODY) == SW_EXPECTED
    assert verify_standard_webhook(SW_SECRET, SW_ID, str(SW_TIMESTAMP), SW_BODY, SW_EXPECTED, now=SW_TIMESTAMP)


def test_standard_webhooks_independent_computation() -> None:
    key = base64.b64decode(SW_SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{SW_ID}.{SW_TIMESTAMP}.".encode() + SW_BODY, hashlib.sha256).digest()
    assert "v1," + base64.b64encode(mac).decode() == SW_EXPECTED


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "body", "header", "now", "ok"),
    [
        (SW_ID, SW_TIMESTAMP, SW_BODY, SW_EXPECTED, SW_TIMESTAMP + 300, True),
        (SW_ID, SW_TIMESTAMP, SW_BODY, SW_EXPECTED, SW_TIMESTAMP - 300, True),
        (SW_ID, SW_TIMESTAMP, SW_BODY, SW_EXPECTED, SW_TIMESTAMP + 301, False),  # too old
        (SW_ID, SW_TIMESTAMP, SW_BODY, SW_EXPECTED, SW_TIMESTAMP - 301, False),  # from the future
        (SW_ID, SW_TIMESTAMP, SW_BODY + b" ", SW_EXPECTED, SW_TIMESTAMP, False),  # tampered body
        ("msg_other", SW_TIMESTAMP, SW_BODY, SW_EXPECTED, SW_TIMESTAMP, False),
        (SW_ID, SW_TIMESTAMP + 1, SW_BODY, SW_EXPECTED, SW_TIMESTAMP, False),
        (SW_ID, SW_TIMESTAMP, SW_BODY, "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", SW_TIMESTAMP, False),
        (
            SW_ID,
            SW_TIMESTAMP,
            SW_BODY,
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,x " + SW_EXPECTED,
            SW_TIMESTAMP,
            True,
        ),  # one of several
        (SW_ID, SW_TIMESTAMP, SW_BODY, SW_EXPECTED.replace("v1,", "v2,"), SW_TIMESTAMP, False),
        (None, SW_TIMESTAMP, SW_BODY, SW_EXPECTED, SW_TIMESTAMP, False),
        (SW_ID, None, SW_BODY, SW_EXPECTED, SW_TIMESTAMP, False),
        (SW_ID, "later", SW_BODY, SW_EXPECTED, SW_TIMESTAMP, False),
        (SW_ID, SW_TIMESTAMP, SW_BODY, "", SW_TIMESTAMP, False),
    ],
)
def test_standard_webhooks_verify(
    msg_id: str | None, timestamp: object, body: bytes, header: str, now: int, ok: bool
) -> None:
    assert verify_standard_webhook(SW_SECRET, msg_id, timestamp, body, header, now=now) is ok  # type: ignore[arg-type]


def test_standard_webhooks_tolerance_can_be_disabled() -> None:
    assert verify_standard_webhook(SW_SECRET, SW_ID, SW_TIMESTAMP, SW_BODY, SW_EXPECTED, tolerance_seconds=None)


def test_generated_secrets_roundtrip_and_differ() -> None:
    one, two = generate_webhook_secret(), generate_webhook_secret()
    assert one != two and one.startswith("whsec_") and len(base64.b64decode(one[6:])) == 32
    header = sign_standard_webhook(one, "msg_1", 1700000000, b"{}")
    assert verify_standard_webhook(one, "msg_1", "1700000000", b"{}", header, now=1700000000)
    assert not verify_standard_webhook(two, "msg_1", "1700000000", b"{}", header, now=1700000000)


def test_standard_webhooks_rejects_a_secret_that_is_not_base64() -> None:
    with pytest.raises(ValueError):
        sign_standard_webhook("whsec_not base64!", SW_ID, SW_TIMESTAMP, SW_BODY)
