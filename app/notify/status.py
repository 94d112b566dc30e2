"""Message status precedence: status only moves forward; failed and undelivered are terminal."""

from __future__ import annotations

RANK = {"pending": 0, "retry_wait": 0, "sending": 1, "accepted": 2, "queued": 2, "scheduled": 2,
        "sent": 3, "delivered": 4, "read": 5}
TERMINAL = {"failed", "undelivered", "canceled"}
OPEN = {"pending", "retry_wait", "sending", "accepted", "queued", "scheduled", "sent"}


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
    if attempt_status in ("sent", "delivered", "read"):
        return attempt_status
    return "queued"
