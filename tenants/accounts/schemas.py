from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

Slug = Annotated[
    str,
    msgspec.Meta(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", description="lowercase letters, digits and dashes"),
]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Scope = Literal["notifications:send", "notifications:read", "admin"]


class TenantCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    slug: Slug | None = None


Quota = Annotated[int, msgspec.Meta(ge=0, le=100_000_000)]


class TenantUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """A field left out is unchanged; null on a limit or quota brings back the platform default."""

    status: Literal["active", "suspended"] | msgspec.UnsetType = msgspec.UNSET
    api_rate_per_second: Annotated[int, msgspec.Meta(ge=1, le=100000)] | msgspec.UnsetType | None = msgspec.UNSET
    max_webhook_endpoints: Quota | msgspec.UnsetType | None = msgspec.UNSET
    max_templates: Quota | msgspec.UnsetType | None = msgspec.UNSET
    max_contacts: Quota | msgspec.UnsetType | None = msgspec.UNSET

    def changes(self) -> dict[str, object]:
        return {f: v for f in self.__struct_fields__ if (v := getattr(self, f)) is not msgspec.UNSET}


class QuotasOut(msgspec.Struct):
    """The limits in force: the tenant's own where set, else the platform default."""

    webhook_endpoints: int
    templates: int
    contacts: int


class TenantOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    slug: str
    status: str
    api_rate_per_second: int | None
    max_webhook_endpoints: int | None
    max_templates: int | None
    max_contacts: int | None
    quotas: QuotasOut
    created_at: datetime


class TenantPage(msgspec.Struct):
    items: list[TenantOut]
    next_cursor: str | None


# Retention (tenants/accounts/retention.py). Bodies: at most 90 days, as our requirements ask (30-90);
# less is allowed for a tenant that wants it. Metadata and the delivery trail: at least 30 days (a
# month's dispute or bill can still be answered), at most 10 years.
BodyDays = Annotated[
    int, msgspec.Meta(ge=1, le=90, description="days message bodies and payloads are kept in clear (1-90)")
]
MetadataDays = Annotated[
    int,
    msgspec.Meta(ge=30, le=3650, description="days metadata and the delivery trail are kept (30-3650)"),
]


class RetentionSettings(msgspec.Struct, forbid_unknown_fields=True):
    """A field left out is the platform default (30 and 400 days); body_days may not exceed metadata_days."""

    body_days: BodyDays = 30
    metadata_days: MetadataDays = 400
