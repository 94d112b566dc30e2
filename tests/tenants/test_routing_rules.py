"""The routing policy's consent ages and country rules: validated on PUT (422 with JSON pointers), and the
quiet-hours arithmetic in the recipient's time zones (tenants/routing/rules.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tenants.routing import rules
from tenants.routing.schemas import QuietHours, RoutingPolicyDoc
from tests.factories import tenant_with_key

QUIET = {"start": "21:00", "end": "08:00"}


@pytest.mark.parametrize(
    "policy, pointer",
    [
        ({"countries": [{"country": "usa"}]}, "/countries/0/country"),
        ({"countries": [{"country": "DE"}, {"country": "ZZ"}]}, "/countries/1/country"),  # no such country
        ({"countries": [{"country": "DE"}, {"country": "DE", "blocked": True}]}, "/countries/1/country"),
        (
            {"countries": [{"country": "DE", "quiet_hours": {"start": "25:00", "end": "08:00"}}]},
            "/countries/0/quiet_hours/start",
        ),
        (
            {"countries": [{"country": "DE", "quiet_hours": {"start": "21:00", "end": "8"}}]},
            "/countries/0/quiet_hours/end",
        ),
        (
            {"countries": [{"country": "DE", "quiet_hours": {"start": "21:00", "end": "21:00"}}]},
            "/countries/0/quiet_hours/end",
        ),
        ({"countries": [{"country": "DE", "quiet_hours": {"start": "21:00"}}]}, "/countries/0/quiet_hours/end"),
        ({"countries": [{"country": "DE", "blocked": "yes"}]}, "/countries/0/blocked"),
        ({"consent_max_age_days": {"MARKETING": -1}}, "/consent_max_age_days/MARKETING"),
        ({"consent_max_age_days": {"default": 0}}, "/consent_max_age_days/default"),
        ({"consent_max_age_days": {"PROMOTIONAL": 30}}, "/consent_max_age_days/PROMOTIONAL"),
        ({"fallback": {"email_on": ["country_closed"]}}, "/fallback/email_on/0"),
    ],
)
async def test_bad_rules_are_a_422_pointing_at_the_field(client, policy, pointer):
    _, admin = await tenant_with_key(client, ["admin"])
    r = await client.put("/v1/routing", json=policy, headers=admin)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert pointer in [e["pointer"] for e in r.json()["errors"]], r.json()
    assert (await client.get("/v1/routing", headers=admin)).json()["countries"] == []  # nothing stored


async def test_good_rules_are_stored_and_read_back(client):
    _, admin = await tenant_with_key(client, ["admin"])
    policy = {
        "consent_max_age_days": {"default": 730, "MARKETING": 180},
        "countries": [
            {"country": "DE", "require_whatsapp_opt_in": True, "quiet_hours": QUIET},
            {"country": "IR", "blocked": True},
        ],
    }
    r = await client.put("/v1/routing", json=policy, headers=admin)
    assert r.status_code == 200, r.text
    got = (await client.get("/v1/routing", headers=admin)).json()
    assert got["consent_max_age_days"]["MARKETING"] == 180 and got["consent_max_age_days"]["UTILITY"] is None
    assert got["countries"][0] == {
        "country": "DE",
        "require_whatsapp_opt_in": True,
        "blocked": False,
        "quiet_hours": QUIET,
    }
    assert "country_blocked" in got["fallback"]["email_on"]  # in the default list


def test_a_policy_stored_before_the_rules_still_loads():
    import msgspec

    old = {"default_country": "US", "require_whatsapp_opt_in": True, "fallback": {"email_on": ["failed"]}}
    doc = msgspec.convert(old, RoutingPolicyDoc)
    assert doc.countries == [] and rules.max_consent_age(doc, "MARKETING") == (None, "default")


def test_the_category_limit_wins_over_the_default():
    doc = msgspec_doc({"consent_max_age_days": {"default": 365, "AUTHENTICATION": 30}})
    assert rules.max_consent_age(doc, "AUTHENTICATION") == (30, "AUTHENTICATION")
    assert rules.max_consent_age(doc, "MARKETING") == (365, "default")
    assert rules.max_consent_age(doc, None) == (365, "default")


def msgspec_doc(raw: dict) -> RoutingPolicyDoc:
    import msgspec

    return msgspec.convert(raw, RoutingPolicyDoc)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


NIGHT = QuietHours("21:00", "08:00")


@pytest.mark.parametrize(
    "now, zones, hours, until",
    [
        (utc(2026, 12, 2, 5, 0), ("America/Los_Angeles",), NIGHT, utc(2026, 12, 2, 16, 0)),  # 21:00 local
        (utc(2026, 12, 2, 4, 59), ("America/Los_Angeles",), NIGHT, None),  # 20:59 local
        (utc(2026, 12, 2, 15, 59), ("America/Los_Angeles",), NIGHT, utc(2026, 12, 2, 16, 0)),  # 07:59
        (utc(2026, 12, 2, 16, 0), ("America/Los_Angeles",), NIGHT, None),  # 08:00: the end is not quiet
        # Same-day quiet hours (a siesta), in Berlin (UTC+1 in December).
        (utc(2026, 12, 2, 12, 30), ("Europe/Berlin",), QuietHours("13:00", "15:00"), utc(2026, 12, 2, 14, 0)),
        (utc(2026, 12, 2, 14, 0), ("Europe/Berlin",), QuietHours("13:00", "15:00"), None),
        # Summer time: 21:00 to 08:00 in New York (UTC-4 in July) ends at 12:00 UTC.
        (utc(2026, 7, 1, 2, 0), ("America/New_York",), NIGHT, utc(2026, 7, 1, 12, 0)),
        # Conservative with several zones: quiet in any, so it waits for the last of them to end.
        (utc(2026, 12, 2, 14, 0), ("America/Los_Angeles", "America/New_York"), NIGHT, utc(2026, 12, 2, 16, 0)),
        (utc(2026, 12, 2, 2, 30), ("America/Los_Angeles", "America/New_York"), NIGHT, utc(2026, 12, 2, 16, 0)),
    ],
)
def test_quiet_hours_end(now, zones, hours, until):
    assert rules.quiet_until(now, zones, hours)[0] == until


def test_zones_that_cover_the_whole_day_are_judged_by_the_first():
    # Quiet 12 h in zones 12 h apart: never free in both, so the first zone alone decides.
    until, judged = rules.quiet_until(
        utc(2026, 12, 2, 5, 0), ("America/Los_Angeles", "Asia/Dubai"), QuietHours("20:00", "08:00")
    )
    assert judged == ["America/Los_Angeles"] and until == utc(2026, 12, 2, 16, 0)


def test_no_known_zone_is_not_judged():
    assert rules.quiet_until(utc(2026, 12, 2, 5, 0), ("Etc/Nowhere",), NIGHT) == (None, [])
