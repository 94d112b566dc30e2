"""Message status precedence: status only moves forward; failed and undelivered are terminal.

And how many tries one attempt gets, which both the send path and the ambiguity checks read.
"""

from __future__ import annotations

# Tries of one attempt before a retryable failure is final (app/notify/sending.py, app/notify/ambiguity.py).
MAX_TRIES = 6

# `unknown` (an ambiguous send being checked) ranks with `sending`: any status Twilio reports advances it.
RANK = {
    "pending": 0,
    "retry_wait": 0,
    "sending": 1,
    "unknown": 1,
    "accepted": 2,
    "queued": 2,
    "scheduled": 2,
    "sent": 3,
    "delivered": 4,
    "read": 5,
}
TERMINAL = {"failed", "undelivered", "canceled"}
OPEN = {"pending", "retry_wait", "sending", "unknown", "accepted", "queued", "scheduled", "sent"}


def advances(current: str, new: str) -> bool:
    """True when `new` is a real transition from `current` (never backwards, never out of a terminal state)."""
    if current in TERMINAL or current == "read":
        return False
    if new in TERMINAL:
        return True
    return RANK.get(new, -1) > RANK.get(current, -1)


def notification_status(attempt_status: str) -> str:
    if attempt_status in TERMINAL:
        return "failed"
    if attempt_status in ("sent", "delivered", "read", "unknown"):
        return attempt_status
    return "queued"
