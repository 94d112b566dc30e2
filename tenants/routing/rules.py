"""Consent freshness and country rules of the routing policy: what the routing steps `country`, `consent`,
`consent_age` and `quiet_hours` ask of it (docs/routing.md). Pure functions over the cached policy
document: no query, no clock of their own (the caller passes `now`).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from channels.phone import is_region
from tenants.routing.schemas import CountryRule, QuietHours, RoutingPolicyDoc

# Quiet hours whose zones together leave no moment free within this span are judged in one zone alone.
_QUIET_SEARCH = timedelta(hours=48)


def country_rule(doc: RoutingPolicyDoc, country: str | None) -> CountryRule | None:
    """The policy's rule for this country (a short list, scanned: it is read with the cached policy)."""
    if country is None:
        return None
    return next((rule for rule in doc.countries if rule.country == country), None)


def opt_in_required(doc: RoutingPolicyDoc, rule: CountryRule | None) -> tuple[bool, str]:
    """(required, which setting says so): the country's rule wins over the tenant's require_whatsapp_opt_in."""
    if rule is not None and rule.require_whatsapp_opt_in is not None:
        return rule.require_whatsapp_opt_in, f"the {rule.country} rule sets require_whatsapp_opt_in"
    return doc.require_whatsapp_opt_in, "require_whatsapp_opt_in is set" if doc.require_whatsapp_opt_in else ""


def category_of(content: dict[str, Any]) -> str | None:
    """The WhatsApp template's category as Twilio last reported it (UTILITY, MARKETING, ...), or None."""
    approval = (content.get("whatsapp") or {}).get("approval") or {}
    category = approval.get("category")
    return str(category).upper() if category else None


def max_consent_age(doc: RoutingPolicyDoc, category: str | None) -> tuple[int | None, str]:
    """(days or None for no limit, the key that set it: the category's, else `default`)."""
    ages = doc.consent_max_age_days
    own = {
        "UTILITY": ages.utility,
        "MARKETING": ages.marketing,
        "AUTHENTICATION": ages.authentication,
        "TRANSACTIONAL": ages.transactional,
    }.get(category or "")
    if own is not None:
        return own, str(category)
    return ages.default, "default"


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _quiet_end(at: datetime, zone: ZoneInfo, start: time, end: time) -> datetime | None:
    """When the quiet period that `at` falls in ends (UTC), or None when `at` is not quiet in `zone`."""
    local = at.astimezone(zone)
    now = local.time().replace(tzinfo=None)
    if start < end:
        quiet, next_day = start <= now < end, False
    else:  # past midnight: 21:00 to 08:00
        quiet, next_day = now >= start or now < end, now >= start
    if not quiet:
        return None
    day = local.date() + timedelta(days=1 if next_day else 0)
    ends = datetime.combine(day, end, tzinfo=zone).astimezone(UTC)
    return ends if ends > at else at + timedelta(minutes=1)  # a wall time skipped by a DST change


def quiet_until(now: datetime, zone_names: tuple[str, ...], hours: QuietHours) -> tuple[datetime | None, list[str]]:
    """(when the send may go, or None when it may go now; the zones that were judged).

    Conservative: it is quiet when it is quiet in any of the number's zones, and the send waits until it is
    quiet in none of them. Should the zones' quiet hours leave no such moment (a number phonenumbers places
    in zones all around the world), the first zone phonenumbers lists is judged alone."""
    zones = [(name, z) for name in zone_names if (z := zone(name)) is not None]
    if not zones:
        return None, []
    start, end = _clock(hours.start), _clock(hours.end)
    at = now
    while at - now <= _QUIET_SEARCH:
        moved = False
        for _, tz in zones:
            ends = _quiet_end(at, tz, start, end)
            if ends is not None:
                at, moved = ends, True
        if not moved:
            return (None if at == now else at), [name for name, _ in zones]
    first, tz = zones[0]
    return _quiet_end(now, tz, start, end), [first]


def validate(doc: RoutingPolicyDoc) -> list[dict[str, str]]:
    """What the schema cannot say: every country known, none twice, quiet hours not empty. JSON pointers."""
    errors: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, rule in enumerate(doc.countries):
        if not is_region(rule.country):
            errors.append({"pointer": f"/countries/{i}/country", "detail": f"{rule.country} is not a country code"})
        elif rule.country in seen:
            errors.append({"pointer": f"/countries/{i}/country", "detail": f"{rule.country} has a rule already"})
        seen.add(rule.country)
        if rule.quiet_hours is not None and rule.quiet_hours.start == rule.quiet_hours.end:
            errors.append(
                {"pointer": f"/countries/{i}/quiet_hours/end", "detail": "quiet hours must end at another time"}
            )
    return errors
