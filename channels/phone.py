"""Phone numbers in, E.164 out (the only form we store and send)."""

from __future__ import annotations

from typing import Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult, timezone

Reason = Literal["unparseable", "impossible", "invalid"]

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "no valid country code: write it with a leading + and country code, or set a default region",
    NumberParseException.NOT_A_NUMBER: "it does not look like a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short to be a phone number",
    NumberParseException.TOO_LONG: "too long to be a phone number",
}

_POSSIBLE_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    ValidationResult.TOO_SHORT: "too short for its country",
    ValidationResult.TOO_LONG: "too long for its country",
    ValidationResult.INVALID_LENGTH: "wrong length for its country",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "a local-only number: add the area code",
}

WHATSAPP_PREFIX = "whatsapp:"


class PhoneError(ValueError):
    """A number we refuse, with `reason` (unparseable | impossible | invalid) and a human `detail`."""

    def __init__(self, raw: str, reason: Reason, detail: str) -> None:
        super().__init__(f"{raw!r} is not a usable phone number ({reason}): {detail}")
        self.raw = raw
        self.reason: Reason = reason
        self.detail = detail


def strip_whatsapp(raw: str) -> str:
    raw = raw.strip()
    if raw[: len(WHATSAPP_PREFIX)].lower() == WHATSAPP_PREFIX:
        return raw[len(WHATSAPP_PREFIX) :].strip()
    return raw


def parse_phone(raw: str, default_region: str | None = None) -> str:
    """E.164 for `raw` (national numbers use `default_region`, an ISO 3166 code such as "BR").

    Raises PhoneError: unparseable (not a number at all), impossible (wrong length for its
    country), or invalid (right length, but no such number range exists).
    """
    text = strip_whatsapp(raw)
    if any(ch.isalpha() for ch in text):
        # phonenumbers would read letters as a vanity number (1-800-FLOWERS) or an extension
        # ("ext. 12"); neither can receive a WhatsApp message, so a letter is a typo here.
        raise PhoneError(raw, "unparseable", "it contains letters")
    region = default_region.upper() if default_region else None
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise PhoneError(raw, "unparseable", _PARSE_REASONS.get(exc.error_type, str(exc))) from None
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != ValidationResult.IS_POSSIBLE:
        raise PhoneError(raw, "impossible", _POSSIBLE_REASONS.get(possible, "not a possible number"))
    if number.extension:
        raise PhoneError(raw, "invalid", "an extension cannot receive messages")
    if not phonenumbers.is_valid_number(number):
        raise PhoneError(raw, "invalid", "no such number range is assigned in its country")
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if len(e164) > 16:
        # phonenumbers' metadata accepts some national numbers (e.g. German) that make the full
        # number longer than E.164's 15 digits; no provider can address those.
        raise PhoneError(raw, "impossible", "longer than the 15 digits E.164 allows")
    return e164


def region_of(e164: str) -> str | None:
    """ISO country code of an E.164 number ("GB", "US"); None when the number is not assigned
    to one country (e.g. +800 international freephone) or cannot be parsed."""
    try:
        number = phonenumbers.parse(strip_whatsapp(e164), None)
    except NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    return None if region in (None, "ZZ", "001") else region


def time_zones_of(e164: str) -> tuple[str, ...]:
    """The IANA time zones phonenumbers gives for a number, in its (alphabetical) order: one for most
    numbers, several for a mobile or non-geographic number of a country that spans zones (US, RU, AU);
    () when it knows none."""
    try:
        number = phonenumbers.parse(strip_whatsapp(e164), None)
    except NumberParseException:
        return ()
    return tuple(z for z in timezone.time_zones_for_number(number) if z != timezone.UNKNOWN_TIMEZONE)


def is_region(code: str) -> bool:
    """True for an ISO 3166-1 alpha-2 code that phone numbers can belong to ("DE"; not "ZZ", "XX")."""
    return code in phonenumbers.SUPPORTED_REGIONS
