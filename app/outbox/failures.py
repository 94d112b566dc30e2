"""What a failed job leaves behind: its error's class and a message with personal data scrubbed.

A job's error can quote what it was working on: SQLAlchemy appends the statement's parameters
(phone numbers, bodies, emails) and drivers echo the value they refused. The dead letter keeps the
class, the driver's own message without the statement, and no quoted value, address or number.
"""

from __future__ import annotations

import re

from sqlalchemy.exc import StatementError

MAX_LENGTH = 300
_SCRUB = (
    (re.compile(r"'[^']*'"), "'…'"),
    (re.compile(r'"[^"]*"'), '"…"'),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "…@…"),
    (re.compile(r"\+?\d[\d ().-]{3,}\d"), "…"),  # phone numbers, and any other long run of digits
    (re.compile(r"\b(?:whatsapp|tel|mailto):\S+"), "…"),
)


def scrub(text: str) -> str:
    for pattern, replacement in _SCRUB:
        text = pattern.sub(replacement, text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_LENGTH else text[: MAX_LENGTH - 1] + "…"


def describe(exc: BaseException) -> str:
    """`ClassName: message`, safe to store and to show an operator."""
    if isinstance(exc, StatementError) and exc.orig is not None:
        # The driver's message alone: SQLAlchemy's text adds the SQL and its bound parameters.
        message = str(exc.orig).split("\n[SQL:", 1)[0]
        message = re.sub(r"^<class '[\w.]+'>:\s*", "", message)
        name = type(exc).__name__
        driver = getattr(exc.orig, "sqlstate", None) or getattr(getattr(exc.orig, "__cause__", None), "sqlstate", None)
        if driver:
            name += f"[{driver}]"
    else:
        message, name = str(exc), type(exc).__name__
    return f"{name}: {scrub(message)}" if message else name
