"""Test harness: a fresh PostgreSQL database per run, migrated by Alembic; a dedicated Redis db.

Settings are process-wide, so the environment is fixed here, before anything imports the app.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, settings

from tests.support.providers import reserve_socket

# Property tests judge properties, not speed: on a loaded 2-core CI host (four xdist workers, each with
# servers and workers of its own) Hypothesis's deadline and too-slow check fail tests that are correct.
settings.register_profile("notifygw", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("notifygw")

PG_ADMIN_URL = os.environ.get("NOTIFYGW_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("NOTIFYGW_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_DB_NAME = f"notifygw_test_{secrets.token_hex(4)}"
_pg_base = PG_ADMIN_URL.rsplit("/", 1)[0]

pytest_plugins = ["tests.support.providers", "tests.support.gateway"]

OPERATOR_TOKEN = "op_test_" + secrets.token_urlsafe(16)
ENCRYPTION_KEYS = "t1:" + "M" * 43  # fixed and obviously non-production; tests of rotation add their own

# The gateway and the emulator call each other, so both ports are fixed before settings are read.
GATEWAY_SOCKET, EMULATOR_SOCKET = reserve_socket(), reserve_socket()
GATEWAY_URL = f"http://127.0.0.1:{GATEWAY_SOCKET.getsockname()[1]}"
EMULATOR_URL = f"http://127.0.0.1:{EMULATOR_SOCKET.getsockname()[1]}"

os.environ.update(
    {
        "NOTIFYGW_ENV": "test",
        "NOTIFYGW_DATABASE_URL": f"{_pg_base.replace('postgresql://', 'postgresql+asyncpg://')}/{TEST_DB_NAME}",
        "NOTIFYGW_REDIS_URL": REDIS_TEST_URL,
        "NOTIFYGW_REDIS_NAMESPACE": TEST_DB_NAME,  # parallel runs share the Redis db without touching each other
        "NOTIFYGW_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "NOTIFYGW_ENCRYPTION_KEYS": ENCRYPTION_KEYS,
        "NOTIFYGW_PEPPER": "test-pepper-" + "p" * 20,
        "NOTIFYGW_PUBLIC_BASE_URL": GATEWAY_URL,
        "NOTIFYGW_TWILIO_API_BASE_URL": EMULATOR_URL,
        "NOTIFYGW_SENDGRID_API_BASE_URL": EMULATOR_URL,
        "NOTIFYGW_TRUSTED_MEDIA_HOSTS": EMULATOR_URL.removeprefix("http://"),
        # The fuzz suite's webhook endpoint receives at the emulator: endpoints need their own permission.
        "NOTIFYGW_WEBHOOK_ENDPOINT_ALLOWED_HOSTS": EMULATOR_URL.removeprefix("http://"),
        "NOTIFYGW_ALLOW_HTTP_MEDIA": "1",
        "NOTIFYGW_PROVIDER_TIMEOUT_SECONDS": "3",
        "NOTIFYGW_LOG_LEVEL": "INFO",
        # xdist runs 4 of these processes, each with servers and workers of its own, against one
        # PostgreSQL (max_connections 100 by default): small pools keep them all under it.
        "NOTIFYGW_DB_POOL_SIZE": "2",
        "NOTIFYGW_DB_MAX_OVERFLOW": "6",
    }
)
for leaking in ("TWILIO_EDGE", "TWILIO_REGION", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "SENDGRID_API_KEY"):
    os.environ.pop(leaking, None)


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(name: str) -> str:
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    # A throwaway database need not wait for the WAL flush on every commit; a crash loses nothing we keep.
    # Every connection to it, the workers' and servers' under test included, inherits this.
    asyncio.run(_admin(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    return f"{_pg_base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"


def drop_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session", autouse=True)
def database() -> Iterator[str]:
    from app.core import migrate

    url = create_database(TEST_DB_NAME)
    try:
        migrate.upgrade(url)  # never create_all: the migrations are under test too
        yield url
    finally:
        drop_database(TEST_DB_NAME)


@pytest.fixture(scope="session", autouse=True)
def actors() -> None:
    """Bind the app's actors, as create_app and the worker do, for tests that send jobs without either.

    Defining an actor binds no broker, so test modules may import actor modules in any order; the
    broker itself is made from the environment above on first use."""
    from app.actors import ACTORS
    from app.core.queue import declare

    declare(ACTORS)


@pytest.fixture(scope="session")
def redis_client() -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL)

    def clear() -> None:  # only this run's keys, in the dedicated test database
        for key in client.scan_iter(match=f"{TEST_DB_NAME}*", count=1000):
            client.delete(key)

    clear()
    yield client
    clear()
    client.close()


@pytest.fixture(scope="session")
def app(database: str, redis_client: Any) -> Any:
    from app.asgi import create_app

    return create_app()


@pytest.fixture
async def client(app: Any) -> AsyncIterator[Any]:
    from litestar.testing import AsyncTestClient

    async with AsyncTestClient(app=app, base_url="https://gw.test") as c:
        yield c


@pytest.fixture
async def session(database: str) -> AsyncIterator[Any]:
    from app.core.db import session_factory

    async with session_factory()() as s:
        yield s
        await s.rollback()


@pytest.fixture(autouse=True)
async def _clean_tables(database: str) -> AsyncIterator[None]:
    """Isolation by truncation: workers and servers under test use their own connections."""
    yield
    await truncate_all()


async def truncate_all() -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from app import models  # noqa: F401  (every table)
    from app.core.db import Base, get_engine
    from app.core.queue import get_broker
    from tests.support.gateway import RUNNING

    tables = [t.name for t in Base.metadata.sorted_tables if t.name != "alembic_version"]
    # TRUNCATE costs a few ms per table even when empty, and most tests write to few tables or none:
    # one round trip finds the tables that hold rows, and only those are truncated.
    probe = (
        "SELECT array_remove(ARRAY["
        + ", ".join(f"CASE WHEN EXISTS (SELECT 1 FROM \"{name}\") THEN '{name}' END" for name in tables)
        + "], NULL)"
    )
    # Jobs left in Redis would act on the next test's data: drop them. A worker still finishing this
    # test's jobs can deadlock with the TRUNCATE; PostgreSQL then aborts one side, and we try again.
    if RUNNING:
        get_broker().flush_all()
    for attempt in range(5):
        try:
            async with get_engine().begin() as conn:
                await conn.execute(text("SET LOCAL lock_timeout = '5s'"))
                dirty = (await conn.execute(text(probe))).scalar_one()
                if dirty:
                    names = ", ".join(f'"{name}"' for name in dirty)
                    await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            break
        except DBAPIError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.2)
