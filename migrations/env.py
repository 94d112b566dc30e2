"""Alembic environment: async, against the metadata of every domain's models, for PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from app import models  # noqa: F401  (every table, so autogenerate compares the whole schema)
from app.core.db import Base, make_engine

target_metadata = Base.metadata
config = context.config


def _url() -> str:
    # Migrations need only the database URL, not the app's secrets.
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("NOTIFYGW_DATABASE_URL")
    if not url:
        from app.core.config import get_settings

        url = get_settings().database_url
    return url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things in place
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = make_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_configure)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
    else:
        asyncio.run(_run_async())
