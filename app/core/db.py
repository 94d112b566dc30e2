"""Database kernel: declarative base, portable column types, and one engine per event loop.

The API and the in-process dev worker run on different event loops; an asyncpg connection is bound
to the loop that opened it, so engines are cached per loop rather than per process.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from datetime import datetime, timezone
from typing import Any, AsyncIterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.core.config import get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC on both PostgreSQL (timestamptz) and SQLite (which drops the offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use app.core.db.utcnow()")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TenantOwned(IdMixin):
    """Every tenant-owned row carries tenant_id; repositories scope every query on it."""

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)


_engines: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[AsyncEngine, async_sessionmaker[AsyncSession]]]" = (
    weakref.WeakKeyDictionary()
)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # The driver's own transaction handling starts transactions only at the first write, so two
        # units of work could read the same row and both write it. We begin them ourselves, below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # WAL + busy timeout: the dev API and dev worker write from two loops at once.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        # SQLite has no SELECT ... FOR UPDATE: taking the write lock at BEGIN serialises units of work,
        # which is what the row locks do on PostgreSQL (the embedded default is single-node anyway).
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url)
        _configure_sqlite(engine)
        return engine
    # A short connect timeout turns "PostgreSQL is down" into a fast 503 instead of a hung request.
    return create_async_engine(
        url, pool_size=10, max_overflow=10, pool_pre_ping=False, connect_args={"timeout": 2, "command_timeout": 10}
    )


def _for_this_loop() -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    loop = asyncio.get_running_loop()
    pair = _engines.get(loop)
    if pair is None:
        engine = make_engine(get_settings().database_url)
        pair = (engine, async_sessionmaker(engine, expire_on_commit=False))
        _engines[loop] = pair
    return pair


def get_engine() -> AsyncEngine:
    return _for_this_loop()[0]


def session_factory() -> async_sessionmaker[AsyncSession]:
    return _for_this_loop()[1]


async def dispose_engine() -> None:
    loop = asyncio.get_running_loop()
    pair = _engines.pop(loop, None)
    if pair is not None:
        await pair[0].dispose()


def insert_on_conflict(session: AsyncSession, table: sa.Table) -> Any:
    """INSERT with ON CONFLICT for this session's database (PostgreSQL, or the embedded SQLite)."""
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


async def unit_of_work() -> AsyncIterator[AsyncSession]:
    """One session, one commit at the end; a raised error rolls back (and drops buffered jobs)."""
    async with session_factory()() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
