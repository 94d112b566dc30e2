"""What one database round trip costs the Python process: raw asyncpg, SQLAlchemy Core, SQLAlchemy ORM.

    .venv/bin/python bench/micro_db.py            # 3,000 operations of each kind

On a throwaway database (created and dropped here), times the client-side CPU (process_time:
this process only, PostgreSQL excluded) and the wall time per operation, one connection, one
after the other, for the operations notifygw's hot paths are made of: a SELECT by key, an INSERT
of a raw-event-shaped row (uuid, tenant, kind, dedupe key, JSONB payload), and a whole unit of work
(BEGIN, SELECT, INSERT, COMMIT). This is the unit price behind the per-request statement counts
printed by bench/sql_trace.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench.common import BenchDatabase, fmt_table

DDL = """
CREATE TABLE ev (id uuid PRIMARY KEY, tenant_id uuid NOT NULL, kind varchar(16) NOT NULL, dedupe_key varchar(200) NOT NULL,
                 payload jsonb NOT NULL, created_at timestamptz NOT NULL, UNIQUE (tenant_id, kind, dedupe_key));
"""
PAYLOAD = {
    "form": [["AccountSid", "AC" + "a" * 32], ["MessageSid", "SM" + "b" * 32], ["MessageStatus", "delivered"]] * 4,
    "query": [["n", str(uuid.uuid4())], ["a", str(uuid.uuid4())]],
}


async def main_async(n: int, db: BenchDatabase) -> list[list[str]]:
    import asyncpg

    class Base(DeclarativeBase):
        pass

    class Ev(Base):
        __tablename__ = "ev"
        id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
        tenant_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
        kind: Mapped[str] = mapped_column(sa.String(16))
        dedupe_key: Mapped[str] = mapped_column(sa.String(200))
        payload: Mapped[dict] = mapped_column(JSONB)
        created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))

    table = Ev.__table__
    tenant = uuid.uuid4()
    rows: list[list[str]] = []

    async def timed(label: str, op, count: int = n) -> None:
        for i in range(50):  # warm caches (statement cache, prepared statements)
            await op(i, warm=True)
        c0, w0 = time.process_time(), time.perf_counter()
        for i in range(count):
            await op(i)
        c1, w1 = time.process_time(), time.perf_counter()
        rows.append([label, f"{1e6 * (c1 - c0) / count:,.0f}", f"{1e6 * (w1 - w0) / count:,.0f}"])

    keys: list[uuid.UUID] = []
    conn = await asyncpg.connect(db.dsn)
    await conn.execute(DDL)

    async def pg_insert(i: int, warm: bool = False) -> None:
        k = uuid.uuid4()
        keys.append(k)
        await conn.execute(
            "INSERT INTO ev (id, tenant_id, kind, dedupe_key, payload, created_at) VALUES ($1,$2,$3,$4,$5,$6)",
            k,
            tenant,
            "status",
            secrets.token_hex(8),
            json.dumps(PAYLOAD),
            datetime.now(UTC),
        )

    async def pg_select(i: int, warm: bool = False) -> None:
        await conn.fetchrow("SELECT * FROM ev WHERE id = $1", keys[i % len(keys)])

    async def pg_uow(i: int, warm: bool = False) -> None:
        async with conn.transaction():
            await conn.fetchrow("SELECT * FROM ev WHERE id = $1", keys[i % len(keys)])
            await pg_insert(i)

    await timed("asyncpg: INSERT", pg_insert)
    await timed("asyncpg: SELECT by key", pg_select)
    await timed("asyncpg: BEGIN + SELECT + INSERT + COMMIT", pg_uow)
    await conn.close()

    engine = create_async_engine(db.url, pool_size=1, max_overflow=0)
    maker = async_sessionmaker(engine, expire_on_commit=False)

    async with engine.connect() as c:

        async def core_insert(i: int, warm: bool = False) -> None:
            await c.execute(
                sa.insert(table).values(
                    id=uuid.uuid4(),
                    tenant_id=tenant,
                    kind="status",
                    dedupe_key=secrets.token_hex(8),
                    payload=PAYLOAD,
                    created_at=datetime.now(UTC),
                )
            )

        async def core_select(i: int, warm: bool = False) -> None:
            (await c.execute(sa.select(table).where(table.c.id == keys[i % len(keys)]))).first()

        await timed("SQLAlchemy Core: INSERT", core_insert)
        await timed("SQLAlchemy Core: SELECT by key", core_select)
        await c.commit()

    async def orm_insert(i: int, warm: bool = False) -> None:
        async with maker() as s:
            s.add(
                Ev(
                    tenant_id=tenant,
                    kind="status",
                    dedupe_key=secrets.token_hex(8),
                    payload=PAYLOAD,
                    created_at=datetime.now(UTC),
                )
            )
            await s.commit()

    async def orm_select(i: int, warm: bool = False) -> None:
        async with maker() as s:
            (await s.execute(sa.select(Ev).where(Ev.id == keys[i % len(keys)]))).scalar_one()

    async def orm_uow_savepoint(i: int, warm: bool = False) -> None:
        """The shape of notifygw's webhook store(): SELECT, then INSERT inside a SAVEPOINT, then COMMIT."""
        async with maker() as s:
            (await s.execute(sa.select(Ev).where(Ev.id == keys[i % len(keys)]))).scalar_one()
            async with s.begin_nested():
                s.add(
                    Ev(
                        tenant_id=tenant,
                        kind="status",
                        dedupe_key=secrets.token_hex(8),
                        payload=PAYLOAD,
                        created_at=datetime.now(UTC),
                    )
                )
                await s.flush()
            await s.commit()

    await timed("ORM: session + SELECT by key (autobegin, close)", orm_select)
    await timed("ORM: session + add + COMMIT (BEGIN, INSERT, COMMIT)", orm_insert)
    await timed("ORM: SELECT + SAVEPOINT + INSERT + RELEASE + COMMIT", orm_uow_savepoint)
    await engine.dispose()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=3000)
    args = p.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    db = BenchDatabase(secrets.token_hex(4))
    db.create()
    try:
        rows = asyncio.run(main_async(args.n, db))
    finally:
        db.drop()
    print(f"\n## One round trip, client side ({args.n:,} each, one connection, sequential, uvloop)")
    print(fmt_table(["operation", "client CPU us/op", "wall us/op"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
