from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

TemplateKey = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,99}$", description="lowercase key, e.g. order_shipped")]
Locale = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", description="BCP 47, e.g. en or pt-BR")]
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


class TemplateCreate(TemplateBody, forbid_unknown_fields=True, kw_only=True):
    key: TemplateKey


class TemplateOut(msgspec.Struct):
    id: uuid.UUID
    key: str
    description: str | None
    default_locale: str
    locales: dict[str, LocaleContent]
    created_at: datetime
    updated_at: datetime


class TemplatePage(msgspec.Struct):
    items: list[TemplateOut]
    next_cursor: str | None
