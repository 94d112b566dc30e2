"""`notifygw replay`: re-enqueue stored provider events. Processing is idempotent, so events that
were already applied change nothing; events whose processing was lost are applied now."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import click
from sqlalchemy import select, update

from app.outbox import service as outbox
from app.webhooks.ingest import PROCESS
from app.webhooks.models import RawEvent


def _parse_since(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("an ISO 8601 time, e.g. 2026-11-26T10:00:00Z", param_hint="--since") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


async def replay_events(since: datetime, tenant: uuid.UUID | None, kind: str | None, batch: int = 500) -> int:
    from app.core.db import dispose_engine, session_factory
    from app.core.discovery import import_models, import_tasks

    import_models()
    import_tasks()
    count = 0
    try:
        async with session_factory()() as session:
            stmt = select(RawEvent.id, RawEvent.tenant_id).where(RawEvent.received_at >= since).order_by(RawEvent.received_at)
            if tenant:
                stmt = stmt.where(RawEvent.tenant_id == tenant)
            if kind:
                stmt = stmt.where(RawEvent.kind == kind)
            rows = (await session.execute(stmt)).all()
            for start in range(0, len(rows), batch):
                chunk = rows[start:start + batch]
                await session.execute(update(RawEvent).where(RawEvent.id.in_([r.id for r in chunk])).values(processed_at=None))
                for event_id, tenant_id in chunk:
                    await outbox.enqueue(session, tenant_id, PROCESS, event_id)
                await session.commit()
                count += len(chunk)
    finally:
        await dispose_engine()
    return count


@click.command("replay")
@click.option("--since", required=True, help="ISO 8601 time: replay events received at or after it")
@click.option("--tenant", type=click.UUID, default=None)
@click.option("--kind", type=click.Choice(["status", "inbound", "sendgrid"]), default=None)
def replay(since: str, tenant: uuid.UUID | None, kind: str | None) -> None:
    """Re-enqueue stored provider events for processing (idempotent)."""
    count = asyncio.run(replay_events(_parse_since(since), tenant, kind))
    click.echo(f"re-enqueued {count} events")


COMMANDS = [replay]
