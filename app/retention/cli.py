"""`notifygw retention run`: apply every tenant's retention now (the workers also do, every 5 minutes)."""

from __future__ import annotations

import asyncio
import json
import uuid

import click


@click.group("retention")
def retention() -> None:
    """Retention of message bodies and metadata (docs/data.md)."""


@retention.command("run")
@click.option("--tenant", "tenants", type=click.UUID, multiple=True, help="Only this tenant (repeatable)")
def run_command(tenants: tuple[uuid.UUID, ...]) -> None:
    """Redact bodies past each tenant's body retention and delete rows past its metadata retention,
    in batches, until nothing is left; prints the rows per step."""
    from app.core.db import dispose_engine
    from app.retention import service

    async def main() -> service.Outcome:
        try:
            return await service.run(only=list(tenants) or None)
        finally:
            await dispose_engine()

    outcome = asyncio.run(main())
    click.echo(json.dumps(outcome.counts, indent=2, sort_keys=True))


COMMANDS = [retention]
