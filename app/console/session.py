"""Console sessions: an admin API key exchanged for a short-lived, server-side session.

The cookie holds only a random session id; the session itself (tenant, key id, CSRF token) lives in
Redis when NOTIFYGW_REDIS_URL is set, so every API process sees a sign-out at once, and in memory in
dev (one process). Only a keyed hash of the id is stored, so a Redis dump names no live session.
Every request checks the key again in the database: revoking it, or suspending the tenant, ends the
session on the next click.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import get_settings
from tenants.accounts.models import Tenant
from tenants.api_keys.models import ApiKey
from tenants.api_keys.token import parse_key
from tenants.auth import Principal

COOKIE = "ngw_console"
# Before sign-in there is no session to hold a CSRF token: the sign-in form is double-submit instead.
PRE_COOKIE = "ngw_console_pre"
PATH = "/console"
IDLE_SECONDS = 30 * 60  # short-lived: half an hour without a click signs you out
MAX_SECONDS = 8 * 3600  # and a working day at most, however busy


@dataclass(frozen=True)
class ConsoleSession:
    tenant_id: uuid.UUID
    key_id: uuid.UUID
    csrf: str
    issued_at: float

    def dump(self) -> str:
        return json.dumps(
            {"t": str(self.tenant_id), "k": str(self.key_id), "c": self.csrf, "i": self.issued_at}, sort_keys=True
        )

    @classmethod
    def load(cls, raw: str | bytes) -> ConsoleSession:
        d = json.loads(raw)
        return cls(uuid.UUID(d["t"]), uuid.UUID(d["k"]), d["c"], float(d["i"]))


class Store(Protocol):
    async def put(self, sid_hash: str, value: str, ttl: int) -> None: ...
    async def get(self, sid_hash: str) -> str | None: ...
    async def delete(self, sid_hash: str) -> None: ...


class MemoryStore:
    def __init__(self) -> None:
        self._rows: dict[str, tuple[str, float]] = {}

    async def put(self, sid_hash: str, value: str, ttl: int) -> None:
        if len(self._rows) > 10_000:  # bound it: drop what has expired
            now = time.monotonic()
            self._rows = {k: v for k, v in self._rows.items() if v[1] > now}
        self._rows[sid_hash] = (value, time.monotonic() + ttl)

    async def get(self, sid_hash: str) -> str | None:
        row = self._rows.get(sid_hash)
        if row is None or row[1] < time.monotonic():
            return None
        return row[0]

    async def delete(self, sid_hash: str) -> None:
        self._rows.pop(sid_hash, None)


class RedisStore:
    def __init__(self, url: str, namespace: str) -> None:
        self._url, self._namespace = url, namespace
        self._clients: dict[int, Any] = {}

    def _client(self) -> Any:
        import redis.asyncio as aioredis

        loop = id(asyncio.get_running_loop())  # redis.asyncio connections are loop-bound
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = aioredis.Redis.from_url(
                self._url, socket_timeout=1.0, socket_connect_timeout=0.5
            )
        return client

    def _key(self, sid_hash: str) -> str:
        return f"{self._namespace}:console:session:{sid_hash}"

    async def put(self, sid_hash: str, value: str, ttl: int) -> None:
        await self._client().set(self._key(sid_hash), value, ex=ttl)

    async def get(self, sid_hash: str) -> str | None:
        raw = await self._client().get(self._key(sid_hash))
        return raw.decode() if isinstance(raw, bytes) else raw

    async def delete(self, sid_hash: str) -> None:
        await self._client().delete(self._key(sid_hash))


_store: Store | None = None


def store() -> Store:
    global _store
    if _store is None:
        settings = get_settings()
        _store = RedisStore(settings.redis_url, settings.redis_namespace) if settings.redis_url else MemoryStore()
    return _store


def _hash(sid: str) -> str:
    pepper = get_settings().pepper.get().encode()
    return hmac.new(pepper, b"console-session|" + sid.encode(), hashlib.sha256).hexdigest()


def secure_cookies() -> bool:
    return not get_settings().dev


class SignInRefused(Exception):
    """The key given at sign-in is not a usable admin key (one message for every reason)."""


async def _key_row(db: AsyncSession, key_id: uuid.UUID | None = None, public_id: str | None = None) -> Any:
    # Found by its own id or public id, as tenants/auth.py finds a bearer key: a key names its tenant.
    stmt = select(ApiKey, Tenant.status).join(Tenant, Tenant.id == ApiKey.tenant_id)
    stmt = stmt.where(ApiKey.id == key_id) if key_id is not None else stmt.where(ApiKey.public_id == public_id)
    return (await db.execute(stmt)).one_or_none()


def _usable(key: ApiKey, tenant_status: str) -> bool:
    return key.revoked_at is None and "admin" in key.scopes and tenant_status == "active"


async def sign_in(db: AsyncSession, full_key: str) -> tuple[str, ConsoleSession]:
    """A new session for an admin key; returns the cookie value (the only copy of the id) and the session."""
    parsed = parse_key(full_key.strip())
    if parsed is None:
        raise SignInRefused
    row = await _key_row(db, public_id=parsed.public_id)
    if row is None:
        raise SignInRefused
    key, tenant_status = row
    if parsed.environment != key.environment or not parsed.matches(key.secret_hash) or not _usable(key, tenant_status):
        raise SignInRefused
    sid = secrets.token_urlsafe(32)
    session = ConsoleSession(key.tenant_id, key.id, secrets.token_urlsafe(32), time.time())
    await store().put(_hash(sid), session.dump(), IDLE_SECONDS)
    return sid, session


async def resume(db: AsyncSession, sid: str | None) -> tuple[ConsoleSession, Principal] | None:
    """The session behind a cookie, if it is still alive and its key still an active admin key."""
    if not sid or len(sid) > 100:
        return None
    raw = await store().get(_hash(sid))
    if raw is None:
        return None
    session = ConsoleSession.load(raw)
    if time.time() - session.issued_at > MAX_SECONDS:
        await store().delete(_hash(sid))
        return None
    row = await _key_row(db, key_id=session.key_id)
    if row is None or row[0].tenant_id != session.tenant_id or not _usable(*row):
        await store().delete(_hash(sid))  # revoked or suspended: this session is over for good
        return None
    key = row[0]
    await store().put(_hash(sid), raw, IDLE_SECONDS)  # sliding: each click keeps it alive
    return session, Principal("api_key", key.tenant_id, key.id, frozenset(key.scopes), key.environment)


async def sign_out(sid: str | None) -> None:
    if sid:
        await store().delete(_hash(sid))


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
