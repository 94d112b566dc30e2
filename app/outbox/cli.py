"""`notifygw dead-letters list|retry`: the CLI twins of /operator/v1/dead-letters."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import click
import msgspec

from app.outbox.schemas import render


def _run(work: Callable[[Any], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        from app.actors import ACTORS
        from app.core.db import dispose_engine, session_factory
        from app.core.queue import declare

        declare(ACTORS)  # a retry sends the job of its kind's actor
        try:
            async with session_factory()() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await dispose_engine()

    return asyncio.run(main())


@click.group("dead-letters")
def dead_letters() -> None:
    """Jobs that used up their tries (outbox state `dead`)."""


@dead_letters.command("list")
@click.option("--kind", default=None, help="e.g. event.process, attempt.send_email")
@click.option("--tenant", type=click.UUID, default=None)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 200))
def list_command(kind: str | None, tenant: uuid.UUID | None, limit: int) -> None:
    from app.outbox import service

    async def work(session: Any) -> Any:
        return await service.list_dead(session, kind=kind, tenant_id=tenant, cursor=None, limit=limit, render=render)

    click.echo(json.dumps(msgspec.to_builtins(_run(work)["items"]), indent=2))


@dead_letters.command("retry")
@click.argument("item_id", type=click.UUID)
def retry_command(item_id: uuid.UUID) -> None:
    """Put dead letter ITEM_ID back to pending, with a fresh count of tries, and send its job."""
    from app.core.errors import AppError
    from app.outbox import service

    async def work(session: Any) -> Any:
        return render(await service.retry_dead(session, item_id))

    try:
        click.echo(json.dumps(msgspec.to_builtins(_run(work)), indent=2))
    except AppError as exc:
        raise click.ClickException(str(exc)) from None


COMMANDS = [dead_letters]
