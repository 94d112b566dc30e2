"""Test harness: a fresh PostgreSQL database per run, migrated by Alembic; a dedicated Redis db.

Settings are process-wide, so the environment is fixed here, before anything imports the app.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from typing import Any, AsyncIterator, Iterator

import asyncpg
import pytest

from tests.support.providers import reserve_socket

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

os.environ.update({
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
    "NOTIFYGW_ALLOW_HTTP_MEDIA": "1",
    "NOTIFYGW_PROVIDER_TIMEOUT_SECONDS": "3",
    "NOTIFYGW_LOG_LEVEL": "INFO",
})
for leaking in ("TWILIO_EDGE", "TWILIO_REGION", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "SENDGRID_API_KEY"):
    os.environ.pop(leaking, None)

# Dramatiq binds actors to the broker that exists when their module is imported: make it ours first.
from app.core.queue import setup_broker  # noqa: E402

setup_broker()


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(name: str) -> str:
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
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

    from app.core.db import Base, get_engine
    from app.core.discovery import import_models
    from app.core.queue import get_broker
    from tests.support.gateway import RUNNING

    import_models()
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    # Jobs left in Redis would act on the next test's data: drop them. A worker still finishing this
    # test's jobs can deadlock with the TRUNCATE; PostgreSQL then aborts one side, and we try again.
    if RUNNING:
        get_broker().flush_all()
    for attempt in range(5):
        try:
            async with get_engine().begin() as conn:
                await conn.execute(text("SET LOCAL lock_timeout = '5s'"))
                await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            break
        except DBAPIError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.2)
