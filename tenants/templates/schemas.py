from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

TemplateKey = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,99}$", description="lowercase key, e.g. order_shipped")
]
Locale = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", description="BCP 47, e.g. en or pt-BR")
]
VariableName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
ContentSid = Annotated[str, msgspec.Meta(pattern=r"^HX[0-9a-fA-F]{32}$")]
SendgridTemplateId = Annotated[str, msgspec.Meta(pattern=r"^d-[0-9a-fA-F]{32}$")]


class WhatsAppContent(msgspec.Struct, forbid_unknown_fields=True):
    content_sid: ContentSid
    # Named variables map in order to the Content API's "1", "2", "3", ...
    variables: Annotated[list[VariableName], msgspec.Meta(max_length=100)] = []


class EmailContent(msgspec.Struct, forbid_unknown_fields=True):
    subject: Annotated[str, msgspec.Meta(min_length=1, max_length=998)] | None = None
    text: Annotated[str, msgspec.Meta(max_length=100_000)] | None = None
    html: Annotated[str, msgspec.Meta(max_length=200_000)] | None = None
    sendgrid_template_id: SendgridTemplateId | None = None


class LocaleContent(msgspec.Struct, forbid_unknown_fields=True):
    whatsapp: WhatsAppContent | None = None
    email: EmailContent | None = None


class TemplateBody(msgspec.Struct, forbid_unknown_fields=True):
    default_locale: Locale
    locales: Annotated[dict[Locale, LocaleContent], msgspec.Meta(min_length=1, max_length=50)]
    description: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    sensitive_variables: Annotated[
        list[VariableName],
        msgspec.Meta(
            max_length=100,
            description="variables whose values (an OTP code) are sealed at rest, dropped once the notification "
            "is final, and never logged or shown",
        ),
    ] = []


class TemplateCreate(TemplateBody, forbid_unknown_fields=True, kw_only=True):
    key: TemplateKey


ApprovalStatus = Annotated[
    str,
    msgspec.Meta(
        description=(
            "approved (sent), pending, rejected, unsubmitted, paused, disabled, unknown (a status Twilio reports that"
            " notifygw does not know: see twilio_status), not_found (the Twilio account does not list this ContentSid),"
            " unverified (never checked: stored before Twilio credentials; sent, Twilio decides)"
        )
    ),
]


class ContentApprovalOut(msgspec.Struct):
    """What Twilio's Content API last reported of one locale's ContentSid (GET /v1/ContentAndApprovals)."""

    content_sid: str
    approval_status: ApprovalStatus
    sendable: bool  # whether routing sends this locale's template to WhatsApp
    twilio_status: str | None = None  # Twilio's own string, as reported
    category: str | None = None  # UTILITY, MARKETING, AUTHENTICATION or the older TRANSACTIONAL
    language: str | None = None
    variables: list[str] | None = None  # Twilio's placeholders ("1", "2", ...), which `variables` fill in order
    rejection_reason: str | None = None
    synced_at: datetime | None = None


class TemplateOut(msgspec.Struct):
    id: uuid.UUID
    key: str
    description: str | None
    default_locale: str
    locales: dict[str, LocaleContent]
    sensitive_variables: list[str]
    created_at: datetime
    updated_at: datetime
    # The least usable status of the locales' WhatsApp templates (approved only when all are); null without any.
    approval_status: ApprovalStatus | None = None
    whatsapp_approvals: dict[str, ContentApprovalOut] = {}  # by locale


class ContentItemOut(msgspec.Struct):
    content_sid: str
    approval_status: ApprovalStatus
    twilio_status: str | None
    category: str | None
    language: str | None
    friendly_name: str | None
    variables: dict[str, str]
    rejection_reason: str | None


class SyncOut(msgspec.Struct):
    """One sync of the tenant's Twilio Content templates."""

    account_sid: str
    synced_at: datetime
    items: int
    by_status: dict[str, int]
    templates_changed: list[str]  # keys of the templates whose approval (or Twilio's variables) changed
    contents: list[ContentItemOut]


class TemplatePage(msgspec.Struct):
    items: list[TemplateOut]
    next_cursor: str | None
