"""The documented fault contract: magic recipient numbers (Twilio) and magic addresses (SendGrid).

These tables are part of the emulator's public contract (docs/emulator.md, issue 4); do not renumber.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TwilioMagic:
    behaviour: str
    rest_status: int | None = None  # a REST error on create
    rest_code: int | None = None
    rest_failures: int = 0  # how many creates of the same message fail before one succeeds
    slow: bool = False  # the 201 is delayed by state.slow_response_seconds
    outcome: str | None = None  # the callback sequence after the 201 (see callbacks.OUTCOMES)
    callbacks: bool = True  # False: the statuses still move, but no status callback is sent
    drops: int = 0  # how many creates of the same message drop the connection first
    list_status: int | None = None  # a Messages list filtered To this number answers this REST error


TWILIO_MAGIC: dict[str, TwilioMagic] = {
    "+15005550001": TwilioMagic("REST 400, code 21211 (invalid To)", rest_status=400, rest_code=21211),
    "+15005550002": TwilioMagic("REST 400, code 21610 (unsubscribed recipient)", rest_status=400, rest_code=21610),
    "+15005550003": TwilioMagic(
        "REST 429, code 20429, twice per message, then success", rest_status=429, rest_code=20429, rest_failures=2
    ),
    "+15005550004": TwilioMagic("REST 500 once, then success", rest_status=500, rest_code=20500, rest_failures=1),
    # The message exists at once; its 201 and then its callbacks come after the delay (never before).
    "+15005550005": TwilioMagic("the response is delayed 30 s, then the usual callbacks", slow=True),
    "+15005550006": TwilioMagic(
        "201, then callback failed with ErrorCode 63016, whatever the window", outcome="failed_63016"
    ),
    "+15005550007": TwilioMagic("201, then callback undelivered with ErrorCode 30003", outcome="undelivered_30003"),
    "+15005550008": TwilioMagic(
        "201, then callbacks duplicated and out of order (read before delivered, each twice)", outcome="shuffled"
    ),
    "+15005550009": TwilioMagic("201, then callback failed with ErrorCode 63024", outcome="failed_63024"),
    "+15005550010": TwilioMagic(
        "accepted; the 201 is delayed 30 s and no status callback is ever sent", slow=True, callbacks=False
    ),
    "+15005550011": TwilioMagic(
        "the first create of each message drops the connection unanswered and creates nothing; the next one succeeds",
        drops=1,
    ),
    "+15005550012": TwilioMagic(
        "accepted; the 201 is delayed 30 s, no status callback, and a Messages list "
        "filtered To this number answers 500 (code 20500)",
        slow=True,
        callbacks=False,
        list_status=500,
    ),
}


@dataclass(frozen=True)
class SendgridMagic:
    behaviour: str
    events: tuple[str, ...]


# Matched on the local part of the address, before any "+tag": bounce@x, bounce+42@x.
SENDGRID_MAGIC: dict[str, SendgridMagic] = {
    "bounce": SendgridMagic("processed, then bounce (type bounce, 5.1.1)", ("processed", "bounce")),
    "blocked": SendgridMagic("processed, then bounce (type blocked, 5.7.1)", ("processed", "blocked")),
    "dropped": SendgridMagic("dropped (reason Bounced Address); never processed", ("dropped",)),
    "deferred": SendgridMagic("processed, deferred, then delivered", ("processed", "deferred", "delivered")),
    "spamreport": SendgridMagic("processed, delivered, then spamreport", ("processed", "delivered", "spamreport")),
}
SENDGRID_DEFAULT_EVENTS = ("processed", "delivered")


def sendgrid_events_for(email: str) -> tuple[str, ...]:
    local = email.split("@", 1)[0].split("+", 1)[0].lower()
    magic = SENDGRID_MAGIC.get(local)
    return magic.events if magic else SENDGRID_DEFAULT_EVENTS
