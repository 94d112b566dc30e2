"""Migrations stay linear and reversible on both databases we run on."""

from __future__ import annotations

import secrets
from pathlib import Path

from alembic.script import ScriptDirectory

from app.core import migrate
from tests.conftest import create_database, drop_database


def test_exactly_one_head():
    heads = ScriptDirectory.from_config(migrate.alembic_config()).get_heads()
    assert len(heads) == 1, f"alembic has several heads: {heads}"


def test_upgrade_downgrade_upgrade_on_postgresql():
    name = f"notifygw_test_mig_{secrets.token_hex(4)}"
    url = create_database(name)
    try:
        migrate.upgrade(url)
        migrate.downgrade(url, "base")
        migrate.upgrade(url)
    finally:
        drop_database(name)


def test_upgrade_downgrade_upgrade_on_sqlite(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    migrate.upgrade(url)
