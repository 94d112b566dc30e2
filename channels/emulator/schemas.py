"""Request bodies of the control API (/_emulator/...). Unknown fields are refused, so typos surface as 422."""

from __future__ import annotations

import msgspec


class AccountCreate(msgspec.Struct, forbid_unknown_fields=True):
    inbound_url: str | None = None
    friendly_name: str | None = None


class AccountPatch(msgspec.Struct, forbid_unknown_fields=True):
    inbound_url: str | None  # required; null stops inbound delivery


class TemplateCreate(msgspec.Struct, forbid_unknown_fields=True):
    account_sid: str
    variables: list[str] = []
    content_sid: str | None = None
    body: str | None = None  # "Hi {{1}}, your code is {{2}}"; a default is made from the variables
    approval: str = "approved"  # the WhatsApp approval status GET /v1/ContentAndApprovals reports
    category: str = "UTILITY"  # UTILITY, MARKETING, AUTHENTICATION or the older TRANSACTIONAL
    language: str = "en"
    friendly_name: str | None = None


class TemplatePatch(msgspec.Struct, forbid_unknown_fields=True):
    """Move a template through WhatsApp's review: any field left out is unchanged."""

    approval: str | None = None
    category: str | None = None
    rejection_reason: str | None = None


class Inbound(msgspec.Struct, forbid_unknown_fields=True, rename={"from_": "from"}):
    account_sid: str
    from_: str | None = None  # "+E164" (a "whatsapp:" prefix is accepted); optional with hide_phone
    to: str | None = None  # "whatsapp:+E164"; default: the account's whatsapp_from
    body: str = ""
    media_url: str | None = None
    media_content_type: str | None = None  # default: guessed from media_url, else image/jpeg
    profile_name: str | None = None
    bsuid: str | None = None  # WhatsApp business-scoped user id, "US.13491208655302741918"
    hide_phone: bool = False  # a username user: From=whatsapp:<bsuid>, no phone, no WaId
    prefixless: bool = False  # From without "whatsapp:" (seen in real payloads)


class SendgridKeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    event_webhook_url: str | None = None


class SendgridKeyPatch(msgspec.Struct, forbid_unknown_fields=True):
    event_webhook_url: str | None


class Clock(msgspec.Struct, forbid_unknown_fields=True):
    advance_seconds: float


class Config(msgspec.Struct, forbid_unknown_fields=True):
    slow_response_seconds: float | None = None
    callback_delay_seconds: float | None = None
    webhook_connect_timeout: float | None = None
    webhook_read_timeout: float | None = None
    accept_bsuid_to: bool | None = None
    response_latency_seconds: float | None = None


class SenderLimitsPut(msgspec.Struct, forbid_unknown_fields=True):
    tier: int | None = None  # distinct people per rolling 24 h; None: no limit (any positive number, for tests)
    mps: float | None = None  # messages per second; None: not enforced
