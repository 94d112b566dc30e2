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


def _stored_rate_after_upgrade(url: str, rate: float) -> float:
    """The sender rate a policy saved at revision 0001 with `rate` holds after every migration."""
    import asyncio
    import json
    import uuid

    import sqlalchemy as sa

    from app.core.db import make_engine

    async def run(sql: str, **params) -> list:
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(sa.text(sql), params)
                return list(result) if result.returns_rows else []
        finally:
            await engine.dispose()

    migrate.upgrade(url, "0001")
    tenant = uuid.uuid4()
    asyncio.run(
        run(
            "INSERT INTO tenants (id, name, slug, status, updated_at, created_at) "
            "VALUES (:id, 'T', :slug, 'active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            id=tenant if "postgresql" in url else tenant.hex,
            slug=tenant.hex,
        )
    )
    policy = json.dumps({"whatsapp": {"sender_rate_per_second": rate}, "default_country": "GB"})
    cast = "CAST(:policy AS jsonb)" if "postgresql" in url else ":policy"
    asyncio.run(
        run(
            f"INSERT INTO routing_policies (id, tenant_id, policy, updated_at, created_at) "
            f"VALUES (:id, :tenant, {cast}, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            id=uuid.uuid4() if "postgresql" in url else uuid.uuid4().hex,
            tenant=tenant if "postgresql" in url else tenant.hex,
            policy=policy,
        )
    )
    migrate.upgrade(url)
    (row,) = asyncio.run(run("SELECT policy FROM routing_policies"))
    stored = row[0] if isinstance(row[0], dict) else json.loads(row[0])
    assert stored["default_country"] == "GB"  # the rest of the document is kept
    return stored["whatsapp"]["sender_rate_per_second"]


def test_0004_raises_vanishing_sender_rates_on_postgresql():
    name = f"notifygw_test_mig_{secrets.token_hex(4)}"
    url = create_database(name)
    try:
        assert _stored_rate_after_upgrade(url, 1e-300) == 0.1  # accepted before 0004, loads after it
    finally:
        drop_database(name)


def test_0004_raises_vanishing_sender_rates_on_sqlite(tmp_path: Path):
    assert _stored_rate_after_upgrade(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}", 1e-300) == 0.1


def test_0010_raises_the_old_default_rate_and_keeps_a_chosen_one_on_postgresql():
    for stored, expected in ((10, 80), (10.0, 80), (25, 25)):
        name = f"notifygw_test_mig_{secrets.token_hex(4)}"
        url = create_database(name)
        try:
            assert _stored_rate_after_upgrade(url, stored) == expected
        finally:
            drop_database(name)


def test_0010_raises_the_old_default_rate_and_keeps_a_chosen_one_on_sqlite(tmp_path: Path):
    for i, (stored, expected) in enumerate(((10, 80), (10.0, 80), (25, 25))):
        assert _stored_rate_after_upgrade(f"sqlite+aiosqlite:///{tmp_path / f'm{i}.db'}", stored) == expected
