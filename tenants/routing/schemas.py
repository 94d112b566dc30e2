from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from tenants.credentials.schemas import MessagingServiceSid

Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
FallbackReason = Literal[
    "window_closed",
    "opted_out",
    "no_consent",
    "failed",
    "no_whatsapp_credentials",
    "no_whatsapp_address",
    "invalid_recipient",
    "template_unapproved",  # the WhatsApp template is not approved (or paused, or gone) in Twilio's Content API
    "country_blocked",  # the recipient's country is blocked for WhatsApp by `countries` (docs/routing.md)
    "messaging_limit",  # the sender is at its messaging-limit tier and the policy says email (docs/tiers.md)
]
Keyword = Annotated[str, msgspec.Meta(pattern=r"^[^\s].{0,31}$", max_length=32)]

MIN_SENDER_RATE, MAX_SENDER_RATE = 0.1, 1000.0
DEFAULT_SENDER_RATE = 80.0
DEFAULT_OPT_OUT_CONFIRMATION = "You are opted out. Reply START to re-subscribe."


# Meta's messaging-limit tiers: business-initiated conversations with distinct people a sender may open in a
# rolling 24 h (FACTS §6.1). A new sender starts at 250. docs/tiers.md.
Tier = Literal[250, 1000, 10000, 100000, "unlimited"]
TIERS: tuple[int, ...] = (250, 1000, 10000, 100000)
DEFAULT_TIER: Tier = 250
# A sender as attempts name it: the WhatsApp address, or the Messaging Service that sends for it.
SenderKey = Annotated[
    str, msgspec.Meta(pattern=r"^(whatsapp:\+[1-9]\d{6,14}|MG[0-9a-fA-F]{32})$", description="whatsapp:+E164 or MG...")
]


class MessagingLimits(msgspec.Struct, forbid_unknown_fields=True):
    """What the tenant knows of each sender's tier, and what to do at the cap (docs/tiers.md)."""

    default_tier: Tier = DEFAULT_TIER
    tiers: Annotated[dict[SenderKey, Tier], msgspec.Meta(max_length=500)] = {}
    # At the cap, a business-initiated send to a new person is held until capacity returns (at most
    # hold_seconds after it was due), or goes by email at once.
    at_cap: Literal["hold", "email"] = "email"
    hold_seconds: Annotated[int, msgspec.Meta(ge=0, le=86400)] = 3600


class WhatsAppRouting(msgspec.Struct, forbid_unknown_fields=True):
    messaging_service_sid: MessagingServiceSid | None = None
    by_country: dict[Country, MessagingServiceSid] = {}
    # Twilio's default per-sender limit is 80 messages/s, text or media (FACTS §6.1); raise it when Twilio
    # raises yours (text up to 400 on request), lower it for a sandbox sender (one message every 3 s).
    # At least one message per 10 s: a vanishing rate (1e-300) overflows the limiter's expiry in Redis.
    sender_rate_per_second: Annotated[float, msgspec.Meta(ge=MIN_SENDER_RATE, le=MAX_SENDER_RATE)] = DEFAULT_SENDER_RATE
    limits: MessagingLimits = msgspec.field(default_factory=MessagingLimits)


class FallbackPolicy(msgspec.Struct, forbid_unknown_fields=True):
    email_on: list[FallbackReason] = msgspec.field(
        default_factory=lambda: [
            "window_closed",
            "opted_out",
            "no_consent",
            "failed",
            "no_whatsapp_credentials",
            "no_whatsapp_address",
            "template_unapproved",
            "country_blocked",
            "messaging_limit",
        ]
    )


# Days a consent stays good for a business-initiated send; at most 100 years.
Days = Annotated[int, msgspec.Meta(ge=1, le=36500)]
ClockTime = Annotated[
    str,
    msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, 24-hour, the recipient's local time"),
]
CATEGORIES = ("UTILITY", "MARKETING", "AUTHENTICATION", "TRANSACTIONAL")  # Twilio's template categories


class ConsentMaxAge(msgspec.Struct, forbid_unknown_fields=True):
    """The oldest consent (in days since it was captured) that lets a business-initiated send go: a WhatsApp
    template sent outside the 24 h window. Per template category, as Twilio reports it; `default` for a
    category not listed here (or unknown); null: no limit. Applies where opt-in is required."""

    default: Days | None = None
    utility: Days | None = msgspec.field(default=None, name="UTILITY")
    marketing: Days | None = msgspec.field(default=None, name="MARKETING")
    authentication: Days | None = msgspec.field(default=None, name="AUTHENTICATION")
    transactional: Days | None = msgspec.field(default=None, name="TRANSACTIONAL")


class QuietHours(msgspec.Struct, forbid_unknown_fields=True):
    """From `start` (included) to `end` (excluded), in the recipient's time zone; past midnight when `end`
    is earlier than `start` (21:00 to 08:00)."""

    start: ClockTime
    end: ClockTime


class CountryRule(msgspec.Struct, forbid_unknown_fields=True):
    """Rules for recipients whose phone number belongs to `country`."""

    country: Country
    # Overrides the tenant's require_whatsapp_opt_in for this country; null: the tenant's.
    require_whatsapp_opt_in: bool | None = None
    blocked: bool = False  # no WhatsApp send at all: the `country_blocked` fallback applies
    quiet_hours: QuietHours | None = None  # MARKETING templates wait until these end


class InboundPolicy(msgspec.Struct, forbid_unknown_fields=True):
    stop_words: Annotated[list[Keyword], msgspec.Meta(max_length=50)] = []
    start_words: Annotated[list[Keyword], msgspec.Meta(max_length=50)] = []
    opt_out_confirmation: Annotated[str, msgspec.Meta(max_length=1024)] | None = DEFAULT_OPT_OUT_CONFIRMATION


class RoutingPolicyDoc(msgspec.Struct, forbid_unknown_fields=True):
    default_country: Country = "US"
    whatsapp: WhatsAppRouting = msgspec.field(default_factory=WhatsAppRouting)
    fallback: FallbackPolicy = msgspec.field(default_factory=FallbackPolicy)
    require_whatsapp_opt_in: bool = True
    consent_max_age_days: ConsentMaxAge = msgspec.field(default_factory=ConsentMaxAge)
    countries: Annotated[list[CountryRule], msgspec.Meta(max_length=300)] = []
    inbound: InboundPolicy = msgspec.field(default_factory=InboundPolicy)
