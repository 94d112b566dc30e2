from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.phone import PhoneError, parse_phone, region_of

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+44 20 7946 0958", None, "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("020 7946 0958", "gb", "+442079460958"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("whatsapp:+14155552671", None, "+14155552671"),
        ("WhatsApp: +1 415 555 2671", "BR", "+14155552671"),
        ("  +55 11 91234-5678 ", None, "+5511912345678"),
        ("11 91234-5678", "BR", "+5511912345678"),
        ("0011 44 20 7946 0958", "AU", "+442079460958"),  # Australian international prefix
        ("+15005550001", None, "+15005550001"),  # the emulator's magic numbers parse
    ],
)
def test_normalises_to_e164(raw: str, region: str | None, expected: str) -> None:
    assert parse_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region", "reason", "words"),
    [
        ("hello", "US", "unparseable", "letters"),
        ("--", "US", "unparseable", "does not look like"),
        ("", "US", "unparseable", "does not look like"),
        ("020 7946 0958", None, "unparseable", "country code"),
        ("+999 1234567", None, "unparseable", "country code"),
        ("+44 1", None, "unparseable", "too short"),
        ("+1 415 555", None, "impossible", "too short"),
        ("+44 20 7946 0958 12345", None, "impossible", "too long"),
        ("+1 415 555 267", None, "impossible", "too short"),
        ("+1 011 555 2671", None, "invalid", "no such number range"),  # area codes never start with 0
        ("+1 212 155 2671", None, "invalid", "no such number range"),  # exchange codes never start with 1
        ("+49 1 234567", "DE", "invalid", "no such number range"),
        ("+49 201 00000000244", None, "impossible", "15 digits"),  # phonenumbers alone accepts it
        ("20100000000ahh", "DE", "unparseable", "letters"),  # found by hypothesis
        ("1-800-FLOWERS", "US", "unparseable", "letters"),
        ("+1 415 555 2671 ext. 123", None, "unparseable", "letters"),
        ("+1 415 555 2671 #123", None, "invalid", "extension"),
    ],
)
def test_refusals_say_why(raw: str, region: str | None, reason: str, words: str) -> None:
    with pytest.raises(PhoneError) as caught:
        parse_phone(raw, region)
    assert caught.value.reason == reason
    assert words in caught.value.detail
    assert isinstance(caught.value, ValueError)
    assert repr(raw) in str(caught.value)


@pytest.mark.parametrize(
    ("e164", "region"),
    [
        ("+14155552671", "US"),
        ("+442079460958", "GB"),
        ("+5511912345678", "BR"),
        ("whatsapp:+4915123456789", "DE"),
        ("+80012345678", None),
        ("nonsense", None),
    ],
)
def test_region_of(e164: str, region: str | None) -> None:
    assert region_of(e164) == region


_REGIONS = sorted(r for r in phonenumbers.SUPPORTED_REGIONS if phonenumbers.example_number(r))
_FORMATS = [
    phonenumbers.PhoneNumberFormat.NATIONAL,
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.E164,
    phonenumbers.PhoneNumberFormat.RFC3966,
]


@settings(max_examples=300, deadline=None)
@given(region=st.sampled_from(_REGIONS), fmt=st.sampled_from(_FORMATS), prefix=st.booleans())
def test_real_numbers_roundtrip_in_any_format(region: str, fmt: int, prefix: bool) -> None:
    example = phonenumbers.example_number(region)
    written = phonenumbers.format_number(example, fmt)
    if fmt == phonenumbers.PhoneNumberFormat.RFC3966:
        written = written.removeprefix("tel:")
    if prefix:
        written = "whatsapp:" + written
    e164 = parse_phone(written, region)
    assert e164 == phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    assert E164.match(e164)
    assert parse_phone(e164) == e164
    assert region_of(e164) in (region, *phonenumbers.region_codes_for_country_code(example.country_code))


@settings(max_examples=500, deadline=None)
@given(
    raw=st.text(alphabet="+0123456789 -().#whatsapext:", max_size=24),
    region=st.sampled_from(["US", "GB", "BR", "IN", "DE"]),
)
def test_any_input_either_refused_or_idempotent_e164(raw: str, region: str) -> None:
    try:
        once = parse_phone(raw, region)
    except PhoneError as exc:
        assert exc.reason in ("unparseable", "impossible", "invalid")
        return
    assert E164.match(once), once
    assert parse_phone(once, region) == once
    assert parse_phone(once) == once  # E.164 needs no region
    assert parse_phone(f"whatsapp:{once}") == once
