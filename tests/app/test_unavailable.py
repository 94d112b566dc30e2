"""Dependencies down: readiness names what is down, requests get 503 problem+json with Retry-After, never 500."""

from __future__ import annotations

import asyncio
import socket

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from app.core import db
from app.health import controllers as health
from tests.factories import OPERATOR, tenant_with_key


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket closes


@pytest.fixture
def database_down(monkeypatch):
    """Every loop's engine points at a port where no PostgreSQL listens (a real refused connection)."""
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/nope"
    engines: dict[int, tuple] = {}

    def bad_engine_for_this_loop():
        key = id(asyncio.get_running_loop())
        if key not in engines:
            engine = db.make_engine(url)
            engines[key] = (engine, db.sessionmaker_for(engine))
        return engines[key]

    monkeypatch.setattr(db, "_for_this_loop", bad_engine_for_this_loop)


async def test_readyz_names_the_broker_when_redis_is_down(client, monkeypatch):
    from dramatiq.brokers.redis import RedisBroker

    down = RedisBroker(url=f"redis://127.0.0.1:{closed_port()}/0", socket_connect_timeout=0.2)
    monkeypatch.setattr(health, "get_broker", lambda: down)
    r = await client.get("/readyz")
    assert r.status_code == 503 and r.headers["retry-after"]
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["down"] == ["broker"]


async def test_database_down_is_503_not_500(client, database_down):
    r = await client.get("/readyz")
    assert r.status_code == 503 and r.json()["down"] == ["database"]
    r = await client.get(
        "/v1/api-keys", headers={"Authorization": "Bearer ngw_live_0123456789abcdef_" + "0" * 64 + "_0000000"}
    )
    assert r.status_code in (401, 503)  # a forged key is refused before any query
    r = await client.post("/operator/v1/tenants", json={"name": "x"}, headers=OPERATOR)
    assert r.status_code == 503 and r.headers["retry-after"] and r.json()["detail"] == "database unavailable"


async def test_every_database_connection_busy_is_503_not_500(client, monkeypatch):
    """Overload: a request that waits past pool_timeout for a connection is told to retry, not a 500."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import AsyncAdaptedQueuePool

    from app.core.config import get_settings

    class Exhausted(AsyncAdaptedQueuePool):
        def _do_get(self):  # what QueuePool raises when every connection stays busy past pool_timeout
            raise PoolTimeout("QueuePool limit of size 10 overflow 10 reached, connection timed out, timeout 30.00")

    engines: dict[int, tuple] = {}

    def exhausted_engine_for_this_loop():
        key = id(asyncio.get_running_loop())
        if key not in engines:
            engine = create_async_engine(get_settings().database_url, poolclass=Exhausted)
            engines[key] = (engine, db.sessionmaker_for(engine))
        return engines[key]

    monkeypatch.setattr(db, "_for_this_loop", exhausted_engine_for_this_loop)
    r = await client.post("/operator/v1/tenants", json={"name": "x"}, headers=OPERATOR)
    assert r.status_code == 503 and r.headers["retry-after"]
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_notifications_accepted_while_redis_is_down(client, monkeypatch):
    """The outbox is in PostgreSQL: with the broker refusing connections the request still answers 202,
    and the work waits in the outbox for the sweeper."""
    from dramatiq.brokers.redis import RedisBroker
    from sqlalchemy import select

    from app.core import queue
    from app.core.db import session_factory
    from app.notify.service import ROUTE
    from app.outbox import service as outbox
    from app.outbox.models import OutboxItem
    from tests.factories import bearer, make_key
    from tests.tenants.test_templates_routing import ORDER_SHIPPED

    down = RedisBroker(url=f"redis://127.0.0.1:{closed_port()}/0", socket_connect_timeout=0.2, socket_timeout=0.2)

    async def never_runs(_session, _id):
        raise AssertionError("the broker is down: no job reaches a worker")

    unreachable = outbox.job(ROUTE, "notifications.route.down", queue="notifications")(never_runs)
    unreachable.bind(down)
    others = tuple(a for a in queue.declared() if getattr(a, "kind", None) != ROUTE)
    monkeypatch.setattr(queue, "_declared", (*others, unreachable))

    tenant, admin = await tenant_with_key(client, ["admin"])
    assert (await client.post("/v1/templates", json=ORDER_SHIPPED, headers=admin)).status_code == 201
    sender = bearer(await make_key(client, tenant["id"], ["notifications:send"]))
    r = await client.post(
        "/v1/notifications",
        headers=sender,
        json={
            "to": {"phone": "+14155550123"},
            "template": "order_shipped",
            "variables": {"name": "A", "order": "1", "carrier": "UPS"},
        },
    )
    assert r.status_code == 202, r.text
    async with session_factory()() as s:
        item = (await s.execute(select(OutboxItem).where(OutboxItem.kind == ROUTE))).scalar_one()
        assert item.state == "pending" and str(item.ref_id) == r.json()["id"]


def engine_for_every_loop(monkeypatch, url: str, **engine_kw) -> dict[int, tuple]:
    engines: dict[int, tuple] = {}

    def this_loop():
        key = id(asyncio.get_running_loop())
        if key not in engines:
            engine = create_async_engine(url, **engine_kw)
            engines[key] = (engine, db.sessionmaker_for(engine))
        return engines[key]

    monkeypatch.setattr(db, "_for_this_loop", this_loop)
    return engines


async def test_a_postgresql_lock_wait_timeout_is_busy_not_unavailable(client, monkeypatch, database):
    """A lock held past lock_timeout is contention, and the problem says so (issue 11, §2)."""
    import asyncpg

    from tests.conftest import PG_ADMIN_URL, TEST_DB_NAME

    engines = engine_for_every_loop(monkeypatch, database, connect_args={"server_settings": {"lock_timeout": "200ms"}})
    holder = await asyncpg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + TEST_DB_NAME)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE")
        r = await client.post("/operator/v1/tenants", json={"name": "x"}, headers=OPERATOR)
        await tx.rollback()
    finally:
        await holder.close()
        for engine, _ in engines.values():
            await engine.dispose()
    assert r.status_code == 503 and r.headers["retry-after"], r.text
    assert r.json()["title"] == "Database busy" and "locked" in r.json()["detail"]
    assert "unavailable" not in r.json()["detail"]


@pytest.fixture
def migrated_sqlite(tmp_path) -> str:
    from app.core import migrate

    url = f"sqlite+aiosqlite:///{tmp_path / 'busy.db'}"
    migrate.upgrade(url)
    return url


async def test_a_sqlite_busy_timeout_is_busy_not_unavailable(client, monkeypatch, migrated_sqlite, tmp_path):
    """The embedded database: another connection's write lock outlasted busy_timeout."""
    import sqlite3

    from sqlalchemy import event

    engines: dict[int, tuple] = {}

    def this_loop():
        key = id(asyncio.get_running_loop())
        if key not in engines:
            engine = db.make_engine(migrated_sqlite)

            @event.listens_for(engine.sync_engine, "connect")
            def _short_wait(dbapi_conn, _record):  # after make_engine's own pragmas: wait 100 ms, not 10 s
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA busy_timeout=100")
                cur.close()

            engines[key] = (engine, db.sessionmaker_for(engine))
        return engines[key]

    monkeypatch.setattr(db, "_for_this_loop", this_loop)
    holder = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        r = await client.post("/operator/v1/tenants", json={"name": "x"}, headers=OPERATOR)
        holder.execute("ROLLBACK")
    finally:
        holder.close()
        for engine, _ in engines.values():
            await engine.dispose()
    assert r.status_code == 503 and r.headers["retry-after"], r.text
    assert r.json()["title"] == "Database busy" and "unavailable" not in r.json()["detail"]
