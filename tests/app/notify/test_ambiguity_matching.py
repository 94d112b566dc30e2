"""Which message in Twilio's list is the copy of an ambiguous send (app/notify/ambiguity.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.notify.ambiguity import CLOCK_SKEW, Expected, find_copy, matches
from channels.base import ListedMessage

STARTED = datetime(2026, 12, 1, 12, 0, 0, 500000, tzinfo=UTC)
SENDER = "whatsapp:+14155231001"
SERVICE = "MG" + "a" * 32
OURS = ListedMessage(
    sid="SM" + "1" * 32,
    to="whatsapp:+14155550123",
    from_=SENDER,
    messaging_service_sid=None,
    body="Your code is 4711",
    status="queued",
    direction="outbound-api",
    date_created=STARTED.replace(microsecond=0),
)  # Twilio's dates have whole seconds
EXPECTED = Expected(to="+14155550123", sender="+14155231001", body="Your code is 4711", started_at=STARTED)


def test_our_copy_matches() -> None:
    assert matches(OURS, EXPECTED)
    assert matches(replace(OURS, date_created=STARTED + timedelta(seconds=40)), EXPECTED)


@pytest.mark.parametrize(
    "change",
    [
        {"date_created": STARTED - CLOCK_SKEW - timedelta(seconds=1)},  # older than the send, even allowing for skew
        {"date_created": None},
        {"from_": "whatsapp:+14155239999"},  # another sender of the tenant
        {"body": "Your code is 4712"},  # another message to the same person
        {"to": "whatsapp:+14155550999"},
        {"direction": "inbound"},  # the person's own message
    ],
)
def test_what_is_not_our_copy(change: dict) -> None:
    assert not matches(replace(OURS, **change), EXPECTED)


def test_small_clock_skew_is_allowed() -> None:
    assert matches(replace(OURS, date_created=STARTED - CLOCK_SKEW + timedelta(seconds=1)), EXPECTED)


def test_messaging_service_is_compared_by_its_sid() -> None:
    expected = replace(EXPECTED, sender=SERVICE)
    queued = replace(OURS, from_=None, messaging_service_sid=SERVICE)  # From is null until a sender is picked
    assert matches(queued, expected) and matches(replace(queued, from_=SENDER), expected)
    assert not matches(replace(queued, messaging_service_sid="MG" + "b" * 32), expected)
    assert not matches(OURS, expected)


def test_template_bodies_are_not_compared() -> None:
    """Twilio renders a Content template (and the resource has no ContentSid): only date and sender count."""
    assert matches(replace(OURS, body="Hi Ava, order 18473 is on its way"), replace(EXPECTED, body=None))


def test_find_copy_skips_messages_of_other_attempts_and_takes_the_earliest() -> None:
    later = replace(OURS, sid="SM" + "2" * 32, date_created=OURS.date_created + timedelta(seconds=5))
    other = replace(OURS, sid="SM" + "3" * 32, body="something else")
    listed = [later, other, OURS]  # newest first, as Twilio lists them
    assert find_copy(listed, EXPECTED, taken=set()) is OURS
    assert find_copy(listed, EXPECTED, taken={OURS.sid}) is later
    assert find_copy(listed, EXPECTED, taken={OURS.sid, later.sid}) is None
    assert find_copy([], EXPECTED, taken=set()) is None
