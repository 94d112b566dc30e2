"""Fitting provider fields into our columns: a validly signed callback is applied, whatever it carries.

A tenant knows its own auth token and SendGrid key, so it can sign anything: a field longer than
its column must neither fail the job forever nor be refused (the raw payload, kept whole in
raw_events, is the record of what came). Free text is cut with a marker. An identifier longer than
its column is no real identifier (Twilio SIDs are 34 characters): it is never truncated into
something that could match a real row; where it must be stored it gets a form that keeps it
unique (a prefix and a hash), and where it would be looked up, the event is an orphan.
"""

from __future__ import annotations

import hashlib
from typing import Any

MARK = "…[truncated]"


def _length(column: Any) -> int | None:
    return getattr(column.property.columns[0].type, "length", None)


def fits(value: str | None, column: Any) -> bool:
    length = _length(column)
    return value is None or length is None or len(value) <= length


def clip(value: str | None, column: Any) -> str | None:
    """Free text cut to the column, ending with MARK when it was cut."""
    if fits(value, column):
        return value
    length = _length(column)
    if value is None or length is None:  # fits() has returned for both already; this narrows the types
        return value
    return value[: max(0, length - len(MARK))] + MARK[:length]


def fit_identifier(value: str, column: Any) -> str:
    """The identifier itself when it fits; else a prefix, `…#` and 16 hex digits of its SHA-256, so two
    different over-long values stay different and the same one always maps to the same key."""
    if fits(value, column):
        return value
    length = _length(column)
    if length is None or length < 18:
        raise ValueError(f"an identifier column needs room for a digest (18 characters), not {length}")
    digest = hashlib.sha256(value.encode()).hexdigest()[:16]
    return value[: length - 18] + "…#" + digest
