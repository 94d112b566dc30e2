"""Database kernel: declarative base, portable column types, and one engine per event loop.

The API and the in-process dev worker run on different event loops; an asyncpg connection is bound
to the loop that opened it, so engines are cached per loop rather than per process.
"""

from __future__ import annotations

import asyncio
import re
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.util import greenlet_spawn

from app.core.config import get_settings
from app.core.uow import UnitOfWorkSession

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC on both PostgreSQL (timestamptz) and SQLite (which drops the offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use app.core.db.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
    }


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TenantOwned(IdMixin):
    """Every tenant-owned row carries tenant_id; repositories scope every query on it."""

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)


def unredacted_index(table: str) -> sa.Index:
    """The rows of a table with bodies still to redact, by tenant and age: what the retention job walks
    (app/retention/service.py). Partial, so a pass never reads the rows an earlier pass redacted."""
    return sa.Index(
        f"ix_{table}_unredacted",
        "tenant_id",
        "created_at",
        postgresql_where=sa.text("redacted_at IS NULL"),
        sqlite_where=sa.text("redacted_at IS NULL"),
    )


_engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[AsyncEngine, async_sessionmaker[AsyncSession]]] = (
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


# Drivers quote the offending value in their own messages: asyncpg's client-side "invalid input for
# query argument $1: '+1415...' (...)", PostgreSQL's 'invalid input syntax for type integer: "..."' and
# a unique violation's "Key (col)=(value)". hide_parameters does not reach those.
_QUOTED_VALUES = (
    (re.compile(r"(invalid input for query argument \$\d+): .*?( \(|$)", re.S | re.M), r"\1: [hidden]\2"),
    (re.compile(r"(invalid input (?:syntax|value) for [^:]*): \"[^\n]*\""), r"\1: [hidden]"),
    (re.compile(r"\bvalue \"[^\n]*?\"( is out of range| too long)"), r"value [hidden]\1"),
    (re.compile(r"(Key \([^)]*\))=\([^\n]*?\)( already exists| is not present| conflicts)"), r"\1=([hidden])\2"),
)


def hide_quoted_values(text: str) -> str:
    for pattern, replacement in _QUOTED_VALUES:
        text = pattern.sub(replacement, text)
    return text


def _scrub_error(context: Any) -> None:
    """Rewrite the messages of the raised error and of every error it chains, before anyone logs them."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [context.sqlalchemy_exception, context.original_exception]
    while pending:
        exc = pending.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        if exc.args and isinstance(exc.args[0], str):
            exc.args = (hide_quoted_values(exc.args[0]), *exc.args[1:])
        pending += [exc.__cause__, exc.__context__]


def make_engine(url: str) -> AsyncEngine:
    engine = _make_engine(url)
    event.listen(engine.sync_engine, "handle_error", _scrub_error)
    return engine


def _make_engine(url: str) -> AsyncEngine:
    # hide_parameters: a failed statement's message (logged, and kept in tracebacks and dead letters)
    # would otherwise carry its bound values: phone numbers, emails, message bodies.
    if url.startswith("sqlite"):
        engine = create_async_engine(url, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    # A short connect timeout turns "PostgreSQL is down" into a fast 503 instead of a hung request.
    settings = get_settings()
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=False,
        connect_args={"timeout": 2, "command_timeout": 10},
        hide_parameters=True,
    )


def _for_this_loop() -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    loop = asyncio.get_running_loop()
    pair = _engines.get(loop)
    if pair is None:
        engine = make_engine(get_settings().database_url)
        pair = (engine, sessionmaker_for(engine))
        _engines[loop] = pair
    return pair


def sessionmaker_for(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that carry a unit of work (app/core/uow.py): rows, jobs and invalidations settled at commit."""
    return async_sessionmaker(engine, class_=UnitOfWorkSession, expire_on_commit=False)


def get_engine() -> AsyncEngine:
    return _for_this_loop()[0]


def session_factory() -> async_sessionmaker[AsyncSession]:
    return _for_this_loop()[1]


async def dispose_engine() -> None:
    loop = asyncio.get_running_loop()
    pair = _engines.pop(loop, None)
    if pair is not None:
        await pair[0].dispose()


@asynccontextmanager
async def snapshot() -> AsyncIterator[AsyncSession]:
    """A session of its own for a read made of several statements that must agree with each other:
    on PostgreSQL every statement sees one snapshot (REPEATABLE READ, read only), so a worker that
    commits between two of them is seen by both or by neither. (SQLite, the one-process dev mode,
    runs each read as it comes.)"""
    async with session_factory()() as session:
        if session.get_bind().dialect.name == "postgresql":
            await session.connection(
                execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
            )
        yield session


def insert_on_conflict(session: AsyncSession, table: sa.FromClause) -> Any:
    """INSERT with ON CONFLICT for this session's database (PostgreSQL, or the embedded SQLite).

    Any: the two dialects' Insert classes differ in their on_conflict_* signatures, and a caller
    uses the one its database has. A mapped class's `__table__` is typed as any FromClause, so the
    table is checked here, where an alias or a join would otherwise fail deep inside SQLAlchemy.
    """
    if not isinstance(table, sa.TableClause):
        raise TypeError(f"insert_on_conflict needs a table, not {type(table).__name__}")
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def insert_with(
    session: AsyncSession,
    first: tuple[sa.Table, dict[str, Any]],
    table: sa.Table,
    rows: list[dict[str, Any]],
    *,
    do_nothing_on: list[str] | None = None,
    returning: sa.ColumnElement[Any] | None = None,
    first_do_nothing_on: list[str] | None = None,
) -> list[Any]:
    """INSERT one row of `first`, then `rows` into `table`: one statement (one round trip) on PostgreSQL
    (`insert_with_statement`); two on SQLite.

    Every column with a Python-side default must be given: a statement inside a CTE gets none.
    `do_nothing_on`: ON CONFLICT (these columns) DO NOTHING for `rows`. `returning`: a column of `table`
    to return for the rows inserted (their values, as a list). `first_do_nothing_on`: ON CONFLICT (these
    columns) DO NOTHING for `first`, and then none of `rows` is inserted either (a duplicate brings no work)."""
    first_table, first_row = first
    if session.get_bind().dialect.name == "postgresql":
        stmt, params = insert_with_statement(
            first,
            table,
            rows,
            do_nothing_on=do_nothing_on,
            returning=returning,
            first_do_nothing_on=first_do_nothing_on,
        )
        result = await session.execute(stmt, params)
        return [] if returning is None else list(result.scalars().all())
    made: Any = insert_on_conflict(session, first_table).values(first_row)
    if first_do_nothing_on is not None:
        made = made.on_conflict_do_nothing(index_elements=first_do_nothing_on).returning(sa.literal_column("1"))
        if (await session.execute(made)).first() is None:
            return []
    else:
        await session.execute(made)
    later: Any = insert_on_conflict(session, table).values(rows)
    if do_nothing_on is not None:
        later = later.on_conflict_do_nothing(index_elements=do_nothing_on)
    if returning is not None:
        later = later.returning(returning)
    result = await session.execute(later)
    return [] if returning is None else list(result.scalars().all())


def insert_with_statement(
    first: tuple[sa.Table, dict[str, Any]],
    table: sa.Table,
    rows: list[dict[str, Any]],
    *,
    do_nothing_on: list[str] | None = None,
    returning: sa.ColumnElement[Any] | None = None,
    first_do_nothing_on: list[str] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """`insert_with`'s one PostgreSQL statement and its parameters:
    `WITH created AS (INSERT ... RETURNING 1) INSERT INTO table ... SELECT ... FROM created`."""
    first_table, first_row = first
    names = tuple(rows[0])
    shape = (
        first_table,
        tuple(first_row),
        table,
        names,
        len(rows),
        tuple(do_nothing_on or ()),
        returning,
        tuple(first_do_nothing_on or ()),
    )
    stmt = _CTE_INSERTS.get(shape)
    if stmt is None:
        stmt = _CTE_INSERTS[shape] = _cte_insert(*shape)
    params = {f"w_{c}": v for c, v in first_row.items()}
    for i, row in enumerate(rows):
        params.update({f"r{i}_{c}": row[c] for c in names})
    return stmt, params


def is_postgresql() -> bool:
    return get_engine().dialect.name == "postgresql"


# A Core statement's SQL for asyncpg, its parameter order and its bind processors: compiled once.
_ON_DRIVER: dict[int, tuple[Any, str, tuple[str, ...], dict[str, Any]]] = {}


async def fetch_autocommitted(stmt: Any, params: dict[str, Any]) -> list[Any]:
    """Run one Core statement, built once (the cache is by identity), by itself on PostgreSQL: on a
    pooled asyncpg connection held for this statement only, with SQLAlchemy's own SQL and bind
    processors, autocommitted by asyncpg. No session, no BEGIN or COMMIT: the webhook's one INSERT,
    the hottest statement of all, skips the ORM's execute path and its per-request session (by py-spy
    about half of the ingest's CPU), and a request holds a connection for one round trip, not for
    its whole life (a pool smaller than the requests in flight reconnects for every overflow one).
    A failure is raised as SQLAlchemy raises it (a DBAPIError with the driver's error as `orig`),
    so the API's problem handlers map it as any other; a connection it broke is not reused."""
    engine = get_engine()
    entry = _ON_DRIVER.get(id(stmt))
    if entry is None or entry[0] is not stmt:
        compiled = stmt.compile(dialect=engine.dialect)
        entry = _ON_DRIVER[id(stmt)] = (stmt, compiled.string, tuple(compiled.positiontup), compiled._bind_processors)
    _, sql, order, processors = entry
    values = [processors[name](params[name]) if name in processors else params[name] for name in order]
    pooled = await engine.raw_connection()
    try:
        return await pooled.driver_connection.fetch(sql, *values)  # type: ignore[no-any-return,union-attr]
    except Exception as error:
        raise _as_sqlalchemy_error(engine, pooled, sql, error) from error
    finally:
        await greenlet_spawn(pooled.close)  # back to the pool (an overflow connection is closed: awaits)


def _as_sqlalchemy_error(engine: AsyncEngine, pooled: Any, sql: str, error: Exception) -> Exception:
    try:
        pooled.dbapi_connection._handle_exception(error)  # raises the asyncpg adapter's DBAPI error for it
    except Exception as translated:
        error = translated
    broken = pooled.driver_connection.is_closed()
    if broken:
        pooled.invalidate(error)
    return sa.exc.DBAPIError.instance(
        sql,
        None,
        error,
        engine.dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=broken,
        dialect=engine.dialect,
    )


# One statement object per shape, built once: SQLAlchemy memoizes a statement's cache key, so an
# execution with new parameters skips building the statement and walking it for its key.
_CTE_INSERTS: dict[tuple[Any, ...], Any] = {}


def _cte_insert(
    first_table: sa.Table,
    first_cols: tuple[str, ...],
    table: sa.Table,
    names: tuple[str, ...],
    n_rows: int,
    do_nothing_on: tuple[str, ...],
    returning: sa.ColumnElement[Any] | None,
    first_do_nothing_on: tuple[str, ...],
) -> Any:
    # Bind names of their own: the CTE's would otherwise be named after columns both tables have.
    made: Any = postgresql.insert(first_table).values(
        {c: sa.bindparam(f"w_{c}", type_=first_table.c[c].type) for c in first_cols}
    )
    if first_do_nothing_on:  # no row made, nothing selected from it: the rest is not inserted either
        made = made.on_conflict_do_nothing(index_elements=list(first_do_nothing_on))
    created = made.returning(sa.literal_column("1").label("made")).cte("created")
    selects = [
        sa.select(*(sa.bindparam(f"r{i}_{c}", type_=table.c[c].type) for c in names)).select_from(created)
        for i in range(n_rows)
    ]
    source = selects[0] if n_rows == 1 else sa.union_all(*selects)
    stmt: Any = postgresql.insert(table).from_select(list(names), source).add_cte(created)
    if do_nothing_on:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(do_nothing_on))
    return stmt if returning is None else stmt.returning(returning)


def table_of(model: type[Base]) -> sa.Table:
    """The Core table behind a mapped class, for Core statements (DeclarativeBase types it as a FromClause)."""
    table = model.__table__
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not mapped to a single table")
    return table


async def unit_of_work() -> AsyncIterator[AsyncSession]:
    """One session, one commit at the end; a raised error rolls back (and drops its unit of work)."""
    async with session_factory()() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
