"""The error table, row by row: once as written down here, once over the table itself."""

from __future__ import annotations

import pytest

from channels.base import FailureClass as F
from channels.errors import (
    SENDGRID_STATUSES,
    TWILIO_CODES,
    classify_sendgrid,
    classify_twilio,
    twilio_reason,
)

# What each code must mean, written independently of channels/errors.py: a change to the table
# has to be made twice, on purpose.
EXPECTED_TWILIO = {
    20003: F.BAD_CREDENTIALS,
    20005: F.BAD_CREDENTIALS,
    20404: F.PERMANENT,
    20429: F.RATE_LIMITED,
    20500: F.TRANSIENT,
    20503: F.TRANSIENT,
    21211: F.INVALID_RECIPIENT,
    21214: F.INVALID_RECIPIENT,
    21603: F.PERMANENT,
    21604: F.PERMANENT,
    21606: F.PERMANENT,
    21608: F.INVALID_RECIPIENT,
    21609: F.PERMANENT,
    21610: F.OPTED_OUT,
    21611: F.RATE_LIMITED,
    21612: F.INVALID_RECIPIENT,
    21614: F.INVALID_RECIPIENT,
    21617: F.PERMANENT,
    21619: F.PERMANENT,
    21620: F.MEDIA_INVALID,
    21623: F.MEDIA_INVALID,
    21655: F.TEMPLATE_INVALID,
    21656: F.TEMPLATE_INVALID,
    21701: F.PERMANENT,
    21910: F.PERMANENT,
    30001: F.RATE_LIMITED,
    30002: F.PERMANENT,
    30003: F.PERMANENT,
    30004: F.PERMANENT,
    30005: F.INVALID_RECIPIENT,
    30006: F.INVALID_RECIPIENT,
    30007: F.PERMANENT,
    30008: F.TRANSIENT,
    30410: F.TRANSIENT,
    63001: F.PERMANENT,
    63003: F.INVALID_RECIPIENT,
    63005: F.PERMANENT,
    63007: F.PERMANENT,
    63008: F.PERMANENT,
    63012: F.TRANSIENT,
    63013: F.PERMANENT,
    63015: F.INVALID_RECIPIENT,
    63016: F.WINDOW_CLOSED,
    63017: F.RATE_LIMITED,
    63018: F.RATE_LIMITED,
    63019: F.MEDIA_INVALID,
    63020: F.PERMANENT,
    63021: F.PERMANENT,
    63022: F.PERMANENT,
    63023: F.TRANSIENT,
    63024: F.INVALID_RECIPIENT,
    63027: F.TEMPLATE_INVALID,
    63028: F.TEMPLATE_INVALID,
    63029: F.TEMPLATE_INVALID,
    63030: F.PERMANENT,
    63032: F.PERMANENT,
}

EXPECTED_SENDGRID = {
    400: F.PERMANENT,
    401: F.BAD_CREDENTIALS,
    403: F.BAD_CREDENTIALS,
    404: F.PERMANENT,
    406: F.PERMANENT,
    408: F.TRANSIENT,
    413: F.PERMANENT,
    429: F.RATE_LIMITED,
    451: F.PERMANENT,
}


def test_the_table_and_the_expectations_list_the_same_codes() -> None:
    assert set(TWILIO_CODES) == set(EXPECTED_TWILIO)
    assert set(SENDGRID_STATUSES) == set(EXPECTED_SENDGRID)


@pytest.mark.parametrize(("code", "expected"), sorted(EXPECTED_TWILIO.items()))
def test_twilio_code_as_expected(code: int, expected: F) -> None:
    assert classify_twilio(code, 400) is expected
    assert classify_twilio(str(code)) is expected  # as a callback's ErrorCode string


@pytest.mark.parametrize(("code", "failure"), sorted(TWILIO_CODES.items()))
def test_every_twilio_row_classifies_and_is_described(code: int, failure: F) -> None:
    assert classify_twilio(code, None) is failure
    assert twilio_reason(code)
    # A known code wins over whatever HTTP status came with it.
    assert classify_twilio(code, 500) is failure


@pytest.mark.parametrize(("status", "expected"), sorted(EXPECTED_SENDGRID.items()))
def test_sendgrid_status_as_expected(status: int, expected: F) -> None:
    assert classify_sendgrid(status) is expected


@pytest.mark.parametrize(("status", "failure"), sorted(SENDGRID_STATUSES.items()))
def test_every_sendgrid_row_classifies(status: int, failure: F) -> None:
    assert classify_sendgrid(status) is failure


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        (99999, 500, F.TRANSIENT),  # unknown code: the status decides
        (99999, 503, F.TRANSIENT),
        (99999, 429, F.RATE_LIMITED),
        (99999, 401, F.BAD_CREDENTIALS),
        (99999, 408, F.TRANSIENT),
        (99999, 400, F.PERMANENT),
        (500, 500, F.TRANSIENT),  # the SDK uses the status as code when the body has none
        (None, 502, F.TRANSIENT),
        (None, None, F.PERMANENT),
        ("99999", None, F.PERMANENT),  # an unknown callback ErrorCode
        ("", None, F.PERMANENT),
        ("not-a-code", 503, F.TRANSIENT),
    ],
)
def test_twilio_fallbacks(code: object, status: int | None, expected: F) -> None:
    assert classify_twilio(code, status) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (500, F.TRANSIENT),
        (502, F.TRANSIENT),
        (503, F.TRANSIENT),
        (504, F.TRANSIENT),
        (405, F.PERMANENT),
        (415, F.PERMANENT),
        (None, F.PERMANENT),
    ],
)
def test_sendgrid_fallbacks(status: int | None, expected: F) -> None:
    assert classify_sendgrid(status) is expected


def test_only_transient_and_rate_limited_are_retryable() -> None:
    assert {f for f in F if f.retryable} == {F.TRANSIENT, F.RATE_LIMITED}
