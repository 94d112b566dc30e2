from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from tenants.credentials.schemas import MessagingServiceSid

Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
FallbackReason = Literal["window_closed", "opted_out", "no_consent", "failed", "no_whatsapp_credentials",
                         "no_whatsapp_address", "invalid_recipient"]
Keyword = Annotated[str, msgspec.Meta(pattern=r"^[^\s].{0,31}$", max_length=32)]

DEFAULT_OPT_OUT_CONFIRMATION = "You are opted out. Reply START to re-subscribe."


class WhatsAppRouting(msgspec.Struct, forbid_unknown_fields=True):
    messaging_service_sid: MessagingServiceSid | None = None
    by_country: dict[Country, MessagingServiceSid] = {}
    # Twilio's default per-sender limit is 10 messages/s (FACTS §6.1); raise it when Twilio raises yours.
    sender_rate_per_second: Annotated[float, msgspec.Meta(gt=0, le=1000)] = 10.0


class FallbackPolicy(msgspec.Struct, forbid_unknown_fields=True):
    email_on: list[FallbackReason] = msgspec.field(default_factory=lambda: [
        "window_closed", "opted_out", "no_consent", "failed", "no_whatsapp_credentials", "no_whatsapp_address"])


class InboundPolicy(msgspec.Struct, forbid_unknown_fields=True):
    stop_words: Annotated[list[Keyword], msgspec.Meta(max_length=50)] = []
    start_words: Annotated[list[Keyword], msgspec.Meta(max_length=50)] = []
    opt_out_confirmation: Annotated[str, msgspec.Meta(max_length=1024)] | None = DEFAULT_OPT_OUT_CONFIRMATION


class RoutingPolicyDoc(msgspec.Struct, forbid_unknown_fields=True):
    default_country: Country = "US"
    whatsapp: WhatsAppRouting = msgspec.field(default_factory=WhatsAppRouting)
    fallback: FallbackPolicy = msgspec.field(default_factory=FallbackPolicy)
    require_whatsapp_opt_in: bool = True
    inbound: InboundPolicy = msgspec.field(default_factory=InboundPolicy)
