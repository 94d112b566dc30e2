from __future__ import annotations

import msgspec


class UsageRow(msgspec.Struct):
    channel: str  # whatsapp | email
    category: str  # UTILITY, MARKETING, AUTHENTICATION, ... | session | unknown | none (email)
    country: str  # ISO 3166 alpha-2 of the recipient's phone number, or "unknown"
    count: int


class UsageMonth(msgspec.Struct):
    month: str  # YYYY-MM, UTC
    total: int
    by_channel: dict[str, int]
    by_category: dict[str, int]
    by_country: dict[str, int]
    rows: list[UsageRow]


class UsageOut(msgspec.Struct):
    environment: str  # live | test: a test key reads its own (simulated) sends, which nobody bills
    counted: str  # the rule, in words
    months: list[UsageMonth]
