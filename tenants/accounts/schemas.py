from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", description="lowercase letters, digits and dashes")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Scope = Literal["notifications:send", "notifications:read", "admin"]


class TenantCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    slug: Slug | None = None


class TenantUpdate(msgspec.Struct, forbid_unknown_fields=True):
    status: Literal["active", "suspended"] | None = None
    api_rate_per_second: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | None = None


class TenantOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    slug: str
    status: str
    api_rate_per_second: int | None
    created_at: datetime


class TenantPage(msgspec.Struct):
    items: list[TenantOut]
    next_cursor: str | None
