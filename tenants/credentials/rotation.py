"""Re-encrypt every stored secret under the first configured key.

Columns are found by their `info={"encrypted": True}` marker, so a new secret column needs no
registration here. Work goes in batches, each committed on its own; a row is rewritten only if
it still holds the ciphertext that was read (a concurrent credential change wins). Rerunning
touches only what is not yet under the first key, so an interrupted run just continues.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.crypto import SecretBox, secret_box
from app.core.db import Base


def encrypted_columns() -> list[tuple[sa.Table, sa.Column[Any]]]:
    """Over the metadata as the process has it: the entry points import app/models.py first."""
    return [(t, c) for t in Base.metadata.sorted_tables for c in t.columns if c.info.get("encrypted")]


async def rotate(
    sessions: async_sessionmaker[AsyncSession],
    *,
    batch_size: int = 200,
    box: SecretBox | None = None,
    on_batch: Callable[[str, int], None] | None = None,
) -> int:
    box = box or secret_box()
    current = f"{box.primary_key_id}:%"
    touched = 0
    for table, column in encrypted_columns():
        while True:
            async with sessions() as session:
                rows = (
                    await session.execute(
                        sa.select(table.c.id, table.c.tenant_id, column)
                        .where(column.is_not(None), sa.not_(column.like(current)))
                        .limit(batch_size)
                    )
                ).all()
                if not rows:
                    break
                for row_id, tenant_id, token in rows:
                    plaintext = box.decrypt(token, SecretBox.aad(tenant_id, table.name, column.name))
                    fresh = box.encrypt(plaintext, SecretBox.aad(tenant_id, table.name, column.name))
                    # An UPDATE's result is a CursorResult (with rowcount); session.execute() is typed as a Result.
                    result = cast(
                        sa.CursorResult[Any],
                        await session.execute(
                            sa.update(table).where(table.c.id == row_id, column == token).values({column.name: fresh})
                        ),
                    )
                    touched += result.rowcount
                await session.commit()
                if on_batch:
                    on_batch(f"{table.name}.{column.name}", len(rows))
    return touched


async def count_not_under_primary(session: AsyncSession, box: SecretBox | None = None) -> int:
    box = box or secret_box()
    total = 0
    for _table, column in encrypted_columns():
        total += (
            await session.execute(
                sa.select(sa.func.count()).where(column.is_not(None), sa.not_(column.like(f"{box.primary_key_id}:%")))
            )
        ).scalar_one()
    return total
