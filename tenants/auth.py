"""Who is calling: the operator (platform staff) or a tenant API key with scopes.

Missing or invalid credential: 401. Valid credential without the scope, or a suspended tenant: 403.
The key's environment is part of every scope: a route refuses test keys (403) unless it says it
takes them (`test_keys=True`), and such a route either only reads configuration or keeps to the
caller's environment (README, API keys).
Key records are cached for at most KEY_CACHE_TTL seconds, which bounds how late a revocation or
suspension made on another API process takes effect (on this process it is immediate).
"""

from __future__ import annotations

import hmac
import math
import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from litestar import Request
from litestar.di import NamedDependency, Provide
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import get_settings
from app.core.db import utcnow
from app.core.deps import DbSession
from app.core.errors import Forbidden, RateLimited, Unauthenticated
from app.core.logging import get_logger
from app.core.metrics import RATE_LIMIT_WAITS
from app.core.ratelimit import limiter
from app.core.uow import unit_of
from tenants.accounts.models import Tenant
from tenants.api_keys.models import ApiKey
from tenants.api_keys.token import parse_key

log = get_logger("notifygw.auth")
SCOPES = ("notifications:send", "notifications:read", "admin")
KEY_CACHE_TTL = 5.0
# Requests per second per tenant when the operator has set none; bursts of twice that are allowed.
DEFAULT_API_RATE = 200
LAST_USED_PRECISION = timedelta(seconds=60)


@dataclass(frozen=True)
class Principal:
    kind: Literal["operator", "api_key"]
    tenant_id: uuid.UUID | None
    key_id: uuid.UUID | None
    scopes: frozenset[str]
    environment: str = "live"

    @property
    def actor_type(self) -> str:
        return self.kind

    @property
    def actor_id(self) -> str | None:
        return str(self.key_id) if self.key_id else None

    @property
    def tenant(self) -> uuid.UUID:
        """The caller's tenant. The operator has none: a tenant's route given it refuses (403), not reads unscoped."""
        if self.tenant_id is None:
            raise Forbidden("this route is for a tenant's API key, not the operator")
        return self.tenant_id


Caller = NamedDependency[Principal]


class TenantSuspended(Forbidden):
    title = "Tenant suspended"
    type_slug = "tenant-suspended"


class LiveOnly(Forbidden):
    """A test key on a route that reads live personal data or changes what live traffic does."""

    type_slug = "live-only"


CANNOT_CHANGE_LIVE = "test keys cannot change live configuration"
CANNOT_READ_LIVE = "test keys cannot read live data"


def refuse_test_key(who: Any, detail: str = CANNOT_CHANGE_LIVE) -> None:
    """403 for a test API key; the operator and live keys pass."""
    if getattr(who, "kind", None) == "api_key" and getattr(who, "environment", "live") != "live":
        raise LiveOnly(detail)


OPERATOR = Principal("operator", None, None, frozenset())


@dataclass(frozen=True)
class _CachedKey:
    key_id: uuid.UUID
    tenant_id: uuid.UUID
    secret_hash: bytes
    scopes: frozenset[str]
    environment: str
    revoked: bool
    tenant_status: str
    api_rate: int
    loaded_at: float


class _KeyCache:
    def __init__(self) -> None:
        self._entries: dict[str, _CachedKey] = {}
        self.last_used: dict[uuid.UUID, datetime] = {}

    def get(self, public_id: str) -> _CachedKey | None:
        entry = self._entries.get(public_id)
        if entry is None or time.monotonic() - entry.loaded_at > KEY_CACHE_TTL:
            return None
        return entry

    def put(self, public_id: str, entry: _CachedKey) -> None:
        if len(self._entries) > 50_000:
            self._entries.clear()
        self._entries[public_id] = entry

    def invalidate(self, public_id: str | None = None, tenant_id: uuid.UUID | None = None) -> None:
        if public_id is not None:
            self._entries.pop(public_id, None)
        if tenant_id is not None:
            for pid in [p for p, e in self._entries.items() if e.tenant_id == tenant_id]:
                self._entries.pop(pid, None)

    def invalidate_on_commit(
        self, session: AsyncSession, *, public_id: str | None = None, tenant_id: uuid.UUID | None = None
    ) -> None:
        """Now, and again once `session` commits (as TTLCache does): a request on this process that reads
        the key between the two would otherwise cache the row as it was before the change for KEY_CACHE_TTL."""
        self.invalidate(public_id, tenant_id)
        unit_of(session).invalidate_after_commit(_KeyCacheEntries(self, public_id, tenant_id), None)


@dataclass(frozen=True)
class _KeyCacheEntries:
    """What one admin write made stale in the key cache, in the unit of work's `invalidate(key)` shape."""

    cache: _KeyCache
    public_id: str | None
    tenant_id: uuid.UUID | None

    def invalidate(self, _key: Hashable) -> None:
        self.cache.invalidate(self.public_id, self.tenant_id)


key_cache = _KeyCache()


def _bearer(request: Request[Any, Any, Any]) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("missing bearer credential")
    return token.strip()


async def _load_key(session: AsyncSession, public_id: str) -> _CachedKey | None:
    row = (
        await session.execute(
            select(ApiKey, Tenant.status, Tenant.api_rate_per_second)
            .join(Tenant, Tenant.id == ApiKey.tenant_id)
            .where(ApiKey.public_id == public_id)
        )
    ).one_or_none()
    if row is None:
        return None
    key, tenant_status, api_rate = row
    # last_used_at is written at most once a minute per key, on a cache refill, never per request.
    seen = key_cache.last_used.get(key.id)
    if seen is not None and (key.last_used_at is None or seen - key.last_used_at >= LAST_USED_PRECISION):
        await session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=seen))
    return _CachedKey(
        key.id,
        key.tenant_id,
        key.secret_hash,
        frozenset(key.scopes),
        key.environment,
        key.revoked_at is not None,
        tenant_status,
        api_rate or DEFAULT_API_RATE,
        time.monotonic(),
    )


async def authenticate_key(request: Request[Any, Any, Any], session: AsyncSession) -> Principal:
    parsed = parse_key(_bearer(request))
    if parsed is None:  # malformed or bad checksum: refused before any query
        raise Unauthenticated("invalid API key")
    entry = key_cache.get(parsed.public_id)
    if entry is None:
        entry = await _load_key(session, parsed.public_id)
        if entry is None:
            raise Unauthenticated("invalid API key")
        key_cache.put(parsed.public_id, entry)
    # The prefix must tell the truth about the environment: a live key relabelled ngw_test_ is no key.
    if entry.revoked or parsed.environment != entry.environment or not parsed.matches(entry.secret_hash):
        raise Unauthenticated("invalid API key")
    if entry.tenant_status != "active":
        raise TenantSuspended("tenant suspended")
    key_cache.last_used[entry.key_id] = utcnow()
    await _within_rate(entry)
    return Principal("api_key", entry.tenant_id, entry.key_id, entry.scopes, entry.environment)


async def _within_rate(entry: _CachedKey) -> None:
    """The per-tenant API limit keeps one tenant from starving the others (429 + Retry-After)."""
    try:
        allowed, wait = await limiter().acquire(f"api:{entry.tenant_id}", entry.api_rate, burst=2 * entry.api_rate)
    except Exception:  # the limiter's store (Redis) is down: serve rather than refuse everyone
        log.warning("rate limiter unavailable; request not limited")
        return
    if not allowed:
        RATE_LIMIT_WAITS.labels("tenant_api").inc()
        raise RateLimited(math.ceil(wait), f"tenant API rate limit of {entry.api_rate}/s exceeded")


def _environment(request: Request[Any, Any, Any], who: Principal, test_keys: bool) -> Principal:
    # Refused by default, so a new route is closed to test keys until it says how it keeps them apart.
    if not test_keys:
        refuse_test_key(who, CANNOT_READ_LIVE if request.method in ("GET", "HEAD") else CANNOT_CHANGE_LIVE)
    return who


def require_scope(scope: str, *, test_keys: bool = False) -> Provide:
    """`test_keys=True`: the route only reads configuration, or keeps to the caller's environment."""
    if scope not in SCOPES:
        raise ValueError(scope)

    async def principal(request: Request[Any, Any, Any], db_session: DbSession) -> Principal:
        who = await authenticate_key(request, db_session)
        if scope not in who.scopes:
            raise Forbidden(f"this key lacks the '{scope}' scope")
        return _environment(request, who, test_keys)

    return Provide(principal)


def require_any_scope(*scopes: str, test_keys: bool = False) -> Provide:
    async def principal(request: Request[Any, Any, Any], db_session: DbSession) -> Principal:
        who = await authenticate_key(request, db_session)
        if not who.scopes.intersection(scopes):
            raise Forbidden(f"this key needs one of the scopes: {', '.join(scopes)}")
        return _environment(request, who, test_keys)

    return Provide(principal)


def operator_token_ok(token: str) -> bool:
    """Is this the operator token? The /operator/v1 API and the console's operator sign-in both ask here."""
    expected = get_settings().operator_token.get()
    return bool(token) and hmac.compare_digest(token.encode(), expected.encode())


def _operator(request: Request[Any, Any, Any]) -> Principal:
    if not operator_token_ok(_bearer(request)):
        raise Unauthenticated("invalid operator token")
    return OPERATOR


require_operator: Callable[[], Provide] = lambda: Provide(_operator, sync_to_thread=False)  # noqa: E731
