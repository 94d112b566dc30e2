"""Usage: what each attempt counts under, fixed when it is sent, and the monthly counts.

The rule (docs/usage.md): an attempt counts once, in the UTC calendar month it was handed to the
provider (`sending_started_at`), when the provider accepted it, i.e. gave it a message id (a Twilio
SID, a SendGrid X-Message-Id). What happens after acceptance does not uncount it (Twilio and Meta
may bill a message that ends undelivered); a send refused at the API, or whose answer was lost and
never found at the provider, is not counted.

Category: a WhatsApp template send counts under its template's category when the template carries
one (`category` in its WhatsApp content: the Content API's UTILITY, MARKETING, AUTHENTICATION or
TRANSACTIONAL), else "unknown"; a session or media message inside the 24 h window is "session";
email is "none". Country: ISO 3166 alpha-2 of the recipient's phone number (phonenumbers' region),
"unknown" when there is none (a BSUID-only or email-only recipient, a non-geographic number).
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ValidationFailed
from app.core.repository import owned_by
from app.notify.models import Attempt, Notification
from channels.phone import region_of, strip_whatsapp

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
MAX_MONTHS = 24
CHANNELS = ("whatsapp", "email")
UNKNOWN = "unknown"
SESSION = "session"
NO_CATEGORY = "none"  # email: WhatsApp's categories do not apply
COUNTED = (
    "attempts the provider accepted (it returned a message id), in the UTC month they were handed to it; "
    "later failures still count, refusals before acceptance do not"
)


def category_for(kind: str, whatsapp_content: Mapping[str, Any] | None = None) -> str:
    """What an attempt of this kind counts under; for a template, the category Twilio last reported for its
    ContentSid (the template sync's "approval" on the content), else unknown."""
    if kind == "email":
        return NO_CATEGORY
    if kind != "template":
        return SESSION
    content = whatsapp_content or {}
    category = (content.get("approval") or {}).get("category") or content.get("category")
    return str(category).upper()[:24] if category else UNKNOWN


def country_for(phone: str | None) -> str | None:
    """ISO country of a recipient's phone number; None when there is no phone or it names no country."""
    bare = strip_whatsapp(phone or "")
    if not bare.startswith("+"):  # a BSUID, or nothing
        return None
    return region_of(bare)


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, raw: str, pointer: str) -> Month:
        found = MONTH.match(raw)
        if found is None:
            raise ValidationFailed(f"{pointer.lstrip('/')} must be a month as YYYY-MM", pointer=pointer)
        year = int(found.group(1))
        if year < 2000:
            raise ValidationFailed(f"{pointer.lstrip('/')} is before 2000", pointer=pointer)
        return cls(year, int(found.group(2)))

    @classmethod
    def of(cls, when: datetime) -> Month:
        return cls(when.year, when.month)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def months(month: str | None, from_: str | None, to: str | None, now: datetime) -> list[Month]:
    """The months asked for: `month`, or `from`..`to` (inclusive; either end defaults to this month)."""
    if month is not None and (from_ is not None or to is not None):
        raise ValidationFailed("give either month or from/to, not both", pointer="/month")
    if month is not None:
        return [Month.parse(month, "/month")]
    current = Month.of(now)
    first = Month.parse(from_, "/from") if from_ is not None else current
    last = Month.parse(to, "/to") if to is not None else current
    if first > last:
        raise ValidationFailed("from must not be after to", pointer="/from")
    found = [first]
    while found[-1] < last:
        found.append(found[-1].next())
        if len(found) > MAX_MONTHS:
            raise ValidationFailed(f"at most {MAX_MONTHS} months at once", pointer="/from")
    return found


# Attempts sent before the category was recorded (revision 0006) count under what their kind says.
_CATEGORY = func.coalesce(
    Attempt.usage_category,
    case((Attempt.kind == "template", UNKNOWN), (Attempt.kind == "email", NO_CATEGORY), else_=SESSION),
)


async def month_counts(session: AsyncSession, tenant_id: uuid.UUID, environment: str, month: Month) -> dict[str, Any]:
    """One month's counts for one tenant and environment."""
    stmt = (
        select(Attempt.channel, _CATEGORY, Attempt.recipient_country, func.count())
        .join(Notification, Notification.id == Attempt.notification_id)
        .where(
            owned_by(Attempt, tenant_id),
            owned_by(Notification, tenant_id),
            Notification.environment == environment,
            Attempt.provider_message_id.is_not(None),
            Attempt.sending_started_at >= month.start(),
            Attempt.sending_started_at < month.next().start(),
        )
        .group_by(Attempt.channel, _CATEGORY, Attempt.recipient_country)
    )
    rows: list[dict[str, Any]] = []
    by_channel: Counter[str] = Counter(dict.fromkeys(CHANNELS, 0))
    by_category: Counter[str] = Counter()
    by_country: Counter[str] = Counter()
    merged: Counter[tuple[str, str, str]] = Counter()
    for channel, category, country, count in (await session.execute(stmt)).all():
        merged[(channel, category or UNKNOWN, country or UNKNOWN)] += int(count)
    for (channel, category, country), count in sorted(merged.items()):
        rows.append({"channel": channel, "category": category, "country": country, "count": count})
        by_channel[channel] += count
        by_category[category] += count
        by_country[country] += count
    return {
        "month": str(month),
        "total": sum(merged.values()),
        "by_channel": dict(by_channel),
        "by_category": dict(by_category),
        "by_country": dict(by_country),
        "rows": rows,
    }
