from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from tenants.accounts.schemas import Scope


class ApiKeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1)]
    environment: Literal["live", "test"] = "live"


class ApiKeyCreated(msgspec.Struct):
    """The only response that ever carries the full key."""

    id: uuid.UUID
    key: str
    prefix: str
    name: str
    scopes: list[str]
    environment: str
    created_at: datetime


class ApiKeyOut(msgspec.Struct):
    id: uuid.UUID
    prefix: str
    name: str
    scopes: list[str]
    environment: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyPage(msgspec.Struct):
    items: list[ApiKeyOut]
    next_cursor: str | None
