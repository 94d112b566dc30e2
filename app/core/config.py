"""One typed settings object, read from NOTIFYGW_* environment variables.

Outside dev mode a missing secret stops startup with one line naming the variable: a random
fallback key would silently break across restarts and replicas.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "NOTIFYGW_"
DEV_HOME = Path(".notifygw")


class ConfigError(SystemExit):
    """Raised at startup for a missing or malformed setting; its message is the one line shown."""


class Secret:
    """A string that never shows itself in repr, str or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class EncryptionKey:
    key_id: str
    material: Secret


def parse_encryption_keys(raw: str) -> tuple[EncryptionKey, ...]:
    """`k2:<urlsafe b64 32 bytes>,k1:...`; the first key encrypts, every key decrypts."""
    keys: list[EncryptionKey] = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        key_id, sep, encoded = entry.partition(":")
        if not sep or not key_id or not key_id.isalnum():
            raise ConfigError(f"{PREFIX}ENCRYPTION_KEYS: entry must look like '<key id>:<base64 key>'")
        try:
            material = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError:
            raise ConfigError(f"{PREFIX}ENCRYPTION_KEYS: key {key_id!r} is not urlsafe base64") from None
        if len(material) != 32:
            raise ConfigError(f"{PREFIX}ENCRYPTION_KEYS: key {key_id!r} must decode to 32 bytes")
        if any(k.key_id == key_id for k in keys):
            raise ConfigError(f"{PREFIX}ENCRYPTION_KEYS: key id {key_id!r} appears twice")
        keys.append(EncryptionKey(key_id, Secret(encoded)))
    if not keys:
        raise ConfigError(f"{PREFIX}ENCRYPTION_KEYS is empty")
    return tuple(keys)


def new_encryption_key_entry(key_id: str) -> str:
    return f"{key_id}:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip('=')}"


@dataclass(frozen=True)
class Settings:
    dev: bool
    database_url: str
    redis_url: str | None
    public_base_url: str
    operator_token: Secret
    encryption_keys: tuple[EncryptionKey, ...]
    pepper: Secret
    twilio_api_base_url: str | None = None
    sendgrid_api_base_url: str | None = None
    log_level: str = "INFO"
    max_body_bytes: int = 65536
    provider_timeout_seconds: float = 10.0
    # Connections per process and event loop (PostgreSQL): pool, and overflow above it at peaks. An overflow
    # connection is closed when returned, so a pool smaller than the API's usual concurrency reconnects
    # (TLS attempt included, and a new backend for PostgreSQL) for every overflow request: at 32 client
    # connections webhook ingest made 511 req/s with 20 kept, 728 with 30 (docs/performance.md). Workers
    # hold one per busy thread, so only the API grows.
    db_pool_size: int = 30
    db_max_overflow: int = 10
    # Hosts the SSRF guard lets through despite being loopback: only the emulator, and only when set.
    trusted_media_hosts: tuple[str, ...] = field(default_factory=tuple)
    # Hosts a tenant's webhook endpoint URL may name although private: a setting of its own, so trusting
    # the emulator for media never opens endpoints to it (issue 11, §12).
    webhook_endpoint_allowed_hosts: tuple[str, ...] = field(default_factory=tuple)
    mount_emulator: bool = False
    allow_http_media: bool = False
    # Prefix of every Redis key (queues, rate limits): lets deployments, or parallel test runs, share a Redis.
    redis_namespace: str = "notifygw"
    # Slow and idle clients (app/server.py, app/core/limits.py): per API process, not per deployment.
    keepalive_timeout_seconds: float = 5.0  # an idle keep-alive connection is closed after this
    header_timeout_seconds: float = 10.0  # a request's headers must be complete this long after its first byte
    body_timeout_seconds: float = 30.0  # ...and its body this long after its headers (else 408)
    max_header_bytes: int = 32768  # request line + headers (else 431)
    max_concurrent_requests: int = 256  # requests in the app at once; beyond it 503 with Retry-After
    max_connections: int = 2048  # open connections, idle ones included (uvicorn's own plain 503)
    # Proxies whose X-Forwarded-For/-Proto uvicorn believes (comma-separated IPs or "*"); unset: none are.
    forwarded_allow_ips: str | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _dev_secret(name: str, make: Callable[[], str]) -> str:
    """Generate once, keep in ./.notifygw at 0600, reuse on every start."""
    DEV_HOME.mkdir(mode=0o700, exist_ok=True)
    path = DEV_HOME / name
    if path.exists():
        return path.read_text().strip()
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def load_settings(env: Mapping[str, str] | None = None, *, dev: bool | None = None) -> Settings:
    env = os.environ if env is None else env

    def get(name: str) -> str | None:
        value = env.get(PREFIX + name)
        return value if value not in (None, "") else None

    if dev is None:
        dev = (get("ENV") or "production").lower() == "dev"

    def required_secret(name: str, dev_file: str, make: Callable[[], str]) -> str:
        value = get(name)
        if value is not None:
            return value
        if dev:
            return _dev_secret(dev_file, make)
        raise ConfigError(f"{PREFIX}{name} is required outside dev mode (see README, Configuration)")

    database_url = get("DATABASE_URL")
    if database_url is None:
        if not dev:
            raise ConfigError(f"{PREFIX}DATABASE_URL is required outside dev mode (see README, Configuration)")
        DEV_HOME.mkdir(mode=0o700, exist_ok=True)
        database_url = f"sqlite+aiosqlite:///{(DEV_HOME / 'notifygw.db').resolve()}"

    try:
        max_body = int(get("MAX_BODY_BYTES") or 65536)
        timeout = float(get("PROVIDER_TIMEOUT_SECONDS") or 10.0)
    except ValueError as exc:
        raise ConfigError(f"{PREFIX}MAX_BODY_BYTES / PROVIDER_TIMEOUT_SECONDS: {exc}") from None

    def positive(name: str, default: float, kind: type = float) -> float:
        raw = get(name)
        try:
            value = kind(raw) if raw is not None else default
        except ValueError:
            raise ConfigError(f"{PREFIX}{name}: {raw!r} is not a {'whole ' if kind is int else ''}number") from None
        if value <= 0:
            raise ConfigError(f"{PREFIX}{name} must be above 0")
        return value

    return Settings(
        dev=dev,
        database_url=database_url,
        redis_url=get("REDIS_URL"),
        public_base_url=(get("PUBLIC_BASE_URL") or "http://127.0.0.1:8000").rstrip("/"),
        operator_token=Secret(
            required_secret("OPERATOR_TOKEN", "operator_token", lambda: "op_" + secrets.token_urlsafe(32))
        ),
        encryption_keys=parse_encryption_keys(
            required_secret("ENCRYPTION_KEYS", "encryption_keys", lambda: new_encryption_key_entry("k1"))
        ),
        pepper=Secret(required_secret("PEPPER", "pepper", lambda: secrets.token_urlsafe(32))),
        twilio_api_base_url=get("TWILIO_API_BASE_URL"),
        sendgrid_api_base_url=get("SENDGRID_API_BASE_URL"),
        log_level=(get("LOG_LEVEL") or "INFO").upper(),
        max_body_bytes=max_body,
        provider_timeout_seconds=timeout,
        trusted_media_hosts=_hosts(get("TRUSTED_MEDIA_HOSTS")),
        webhook_endpoint_allowed_hosts=_hosts(get("WEBHOOK_ENDPOINT_ALLOWED_HOSTS")),
        mount_emulator=dev or _flag(get("MOUNT_EMULATOR")),
        allow_http_media=dev or _flag(get("ALLOW_HTTP_MEDIA")),
        redis_namespace=get("REDIS_NAMESPACE") or "notifygw",
        keepalive_timeout_seconds=positive("KEEPALIVE_TIMEOUT_SECONDS", 5.0),
        header_timeout_seconds=positive("HEADER_TIMEOUT_SECONDS", 10.0),
        body_timeout_seconds=positive("BODY_TIMEOUT_SECONDS", 30.0),
        max_header_bytes=int(positive("MAX_HEADER_BYTES", 32768, int)),
        max_concurrent_requests=int(positive("MAX_CONCURRENT_REQUESTS", 256, int)),
        max_connections=int(positive("MAX_CONNECTIONS", 2048, int)),
        forwarded_allow_ips=get("FORWARDED_ALLOW_IPS"),
        db_pool_size=int(positive("DB_POOL_SIZE", 30, int)),
        db_max_overflow=int(get("DB_MAX_OVERFLOW") or 10),
    )


def _hosts(value: str | None) -> tuple[str, ...]:
    """`host` or `host:port`, comma-separated."""
    return tuple(h.strip() for h in (value or "").split(",") if h.strip())


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


_settings: Settings | None = None


def get_settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def set_settings(settings: Settings) -> None:
    global _settings
    _settings = settings
