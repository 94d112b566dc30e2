"""`notifygw replay`: re-enqueue stored provider events. Processing is idempotent, so events that
were already applied change nothing; events whose processing was lost are applied now."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import click

from app.webhooks import replay


def _parse_since(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("an ISO 8601 time, e.g. 2026-11-26T10:00:00Z", param_hint="--since") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def replay_events(
    since: datetime | None, tenant: uuid.UUID | None, kind: str | None, message_sid: str | None = None
) -> int:
    from app.actors import ACTORS
    from app.core.db import dispose_engine, session_factory
    from app.core.queue import declare

    declare(ACTORS)  # each replayed event's job goes to its actor
    try:
        async with session_factory()() as session:
            if message_sid:
                events = await replay.events_of_message(session, message_sid, tenant, since)
            elif since is not None:
                events = await replay.events_since(session, since, tenant, kind)
            else:
                raise ValueError("replay needs a time or a MessageSid")
            return await replay.requeue(session, events)
    finally:
        await dispose_engine()


@click.command("replay")
@click.option("--since", default=None, help="ISO 8601 time: replay events received at or after it")
@click.option("--message-sid", default=None, help="replay the stored Twilio callbacks of this message (SM... or MM...)")
@click.option("--tenant", type=click.UUID, default=None)
@click.option("--kind", type=click.Choice(["status", "inbound", "sendgrid"]), default=None)
def replay_command(since: str | None, message_sid: str | None, tenant: uuid.UUID | None, kind: str | None) -> None:
    """Apply stored provider events again (idempotent: what was applied changes nothing; nothing is resent)."""
    if not since and not message_sid:
        raise click.UsageError("give --since, --message-sid, or both")
    if message_sid and not replay.MESSAGE_SID.match(message_sid):
        raise click.BadParameter("a Twilio MessageSid: SM or MM and 32 hex digits", param_hint="--message-sid")
    if message_sid and kind:
        raise click.UsageError("--kind goes with --since only: a message's callbacks are status and inbound")
    count = asyncio.run(replay_events(_parse_since(since) if since else None, tenant, kind, message_sid))
    if message_sid and not count:
        raise click.ClickException(f"no stored callbacks name {message_sid}")
    click.echo(f"re-enqueued {count} events")


COMMANDS = [replay_command]
