"""The tenant's Twilio Content templates, synced from `GET /v1/ContentAndApprovals` (channels/twilio_content.py).

A sync reads the whole list with the tenant's stored credentials (the network call comes before any
write), then, in the caller's transaction: replaces the tenant's `twilio_contents` rows with what the
account lists (a ContentSid no longer listed, or listed by a previous account, goes), refreshes the
`approvals` of every template that names one of them, and records the sync in `twilio_content_syncs`.
The caller commits. It runs:

- when Twilio credentials are stored (PUT /v1/providers/twilio; a failure there stores the credentials
  anyway and leaves the sync due, for the periodic pass);
- on demand (POST /v1/templates/sync), and when a template names a ContentSid the last sync did not list;
- periodically: the workers' maintenance pass syncs each tenant whose sync is due (`due`, `claim`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from app.core import providers
from app.core.db import utcnow
from app.core.errors import Conflict
from app.core.repository import TenantRepository, owned_by
from channels.base import ChannelError, TwilioCredentials
from channels.twilio_content import ContentItem, TwilioContent
from tenants.credentials import service as credentials
from tenants.credentials.models import TwilioCredential
from tenants.templates import approvals
from tenants.templates.cache import contents as cached_contents
from tenants.templates.models import ContentSync
from tenants.templates.models import TwilioContent as ContentRow
from tenants.templates.repository import TemplateRepository

SYNC_EVERY = timedelta(minutes=15)  # approvals change in Meta's review, and pauses come without notice
RETRY_FAILED_AFTER = timedelta(minutes=2)
CLAIM_FOR = timedelta(minutes=5)  # a claimed sync that never finished is due again after this


class SyncRaced(Conflict):
    """Two syncs of one tenant at once: the one that lost the race changes nothing (409 for a request)."""


class ContentRepository(TenantRepository[ContentRow]):
    model = ContentRow

    async def listed(self, account_sid: str, sids: Iterable[str] | None = None) -> dict[str, ContentRow]:
        stmt = self.statement().where(ContentRow.account_sid == account_sid)
        if sids is not None:
            stmt = stmt.where(ContentRow.content_sid.in_(list(sids)))
        return {row.content_sid: row for row in await self.all(stmt)}


class SyncRepository(TenantRepository[ContentSync]):
    model = ContentSync


@dataclass
class SyncResult:
    account_sid: str
    synced_at: datetime
    items: int
    by_status: dict[str, int] = field(default_factory=dict)
    templates_changed: list[str] = field(default_factory=list)


async def fetch(creds: TwilioCredentials) -> list[ContentItem]:
    """The account's Content templates from Twilio (ChannelError when Twilio refuses or cannot be reached)."""
    return await TwilioContent(providers.twilio()).contents(creds)


async def _state(session: AsyncSession, tenant_id: uuid.UUID) -> ContentSync:
    repo = SyncRepository(session, tenant_id)
    state = await repo.one_by()
    if state is None:
        state = repo.add(ContentSync(due_at=utcnow(), items=0))
        try:
            async with session.begin_nested():
                await session.flush()
        except IntegrityError:
            raise SyncRaced("another sync of this tenant's Content templates ran at the same time; retry") from None
    return state


async def apply(
    session: AsyncSession, tenant_id: uuid.UUID, account_sid: str, items: Sequence[ContentItem]
) -> SyncResult:
    """Store one complete listing of the account's Content templates (see the module's docstring)."""
    now = utcnow()
    repo = ContentRepository(session, tenant_id)
    state = await _state(session, tenant_id)  # read before the rows change: no autoflush outside the savepoint
    existing = {row.content_sid: row for row in await repo.all()}
    listed: dict[str, ContentRow] = {}
    for item in items:
        if item.sid in listed:  # listed twice (a page boundary moved while reading): the first one counts
            continue
        row = existing.pop(item.sid, None) or repo.add(ContentRow(content_sid=item.sid))
        row.account_sid = account_sid
        row.friendly_name = (item.friendly_name or "")[:256] or None
        row.language = (item.language or "")[:35] or None
        row.category = (item.category or "")[:32] or None
        row.approval_status = item.approval_status
        row.twilio_status = (item.twilio_status or "")[:64] or None
        row.rejection_reason = (item.rejection_reason or "")[:2000] or None
        row.variables = dict(item.variables)
        row.types = list(item.types)
        row.synced_at = now
        listed[item.sid] = row
    for gone in existing.values():  # no longer listed, or another (earlier) account's
        await session.delete(gone)
    state.account_sid, state.synced_at, state.attempted_at = account_sid, now, now
    state.items, state.error, state.due_at = len(listed), None, now + SYNC_EVERY
    try:
        async with session.begin_nested():
            await session.flush()
    except (IntegrityError, StaleDataError):  # another sync of this tenant inserted or deleted the same rows first
        raise SyncRaced("another sync of this tenant's Content templates ran at the same time; retry") from None
    changed = await refresh_templates(session, tenant_id, listed, now)
    by_status: dict[str, int] = {}
    for row in listed.values():
        by_status[row.approval_status] = by_status.get(row.approval_status, 0) + 1
    return SyncResult(account_sid, now, len(listed), by_status, changed)


async def refresh_templates(
    session: AsyncSession, tenant_id: uuid.UUID, listed: dict[str, ContentRow], synced_at: datetime
) -> list[str]:
    """Rewrite each template's `approvals` from the listing; the keys of the templates that changed."""
    changed = []
    for template in await TemplateRepository(session, tenant_id).all():
        fresh = {
            sid: approvals.snapshot(listed[sid]) if sid in listed else approvals.not_found(synced_at)
            for sid in approvals.content_sids(template.locales).values()
        }
        if _without_times(fresh) != _without_times(template.approvals or {}):
            changed.append(template.key)
        if fresh != (template.approvals or {}):
            template.approvals = fresh
            cached_contents.invalidate_on_commit(session, (tenant_id, template.key))
    await session.flush()
    return changed


def _without_times(snapshots: dict[str, Any]) -> dict[str, Any]:
    return {sid: {k: v for k, v in snap.items() if k != "synced_at"} for sid, snap in snapshots.items()}


async def sync(session: AsyncSession, tenant_id: uuid.UUID) -> SyncResult | None:
    """Sync the tenant's Content templates with its stored credentials; None when it has none.
    Raises ChannelError when Twilio refuses or cannot be reached (recorded: see `record_failure`)."""
    row = await credentials.find_twilio(session, tenant_id)
    if row is None:
        return None
    account_sid, creds = row.account_sid, credentials.twilio_secrets(row)
    items = await fetch(creds)
    return await apply(session, tenant_id, account_sid, items)


async def record_failure(session: AsyncSession, tenant_id: uuid.UUID, exc: ChannelError) -> None:
    """A sync that failed: said on the sync state, and due again soon."""
    now = utcnow()
    state = await _state(session, tenant_id)
    state.attempted_at, state.due_at = now, now + RETRY_FAILED_AFTER
    state.error = f"{exc.failure.value}: {exc.message}"[:300]
    await session.flush()


async def state_of(session: AsyncSession, tenant_id: uuid.UUID) -> ContentSync | None:
    return await SyncRepository(session, tenant_id).one_by()


async def listed(
    session: AsyncSession, tenant_id: uuid.UUID, account_sid: str, sids: Iterable[str] | None = None
) -> dict[str, ContentRow]:
    """The synced Content templates of this account, by ContentSid (only those asked for, if given)."""
    return await ContentRepository(session, tenant_id).listed(account_sid, sids)


# --- the periodic pass (app/notify/maintenance.py) --------------------------------------------------


async def due(session: AsyncSession, *, limit: int = 20) -> list[uuid.UUID]:
    """Tenants with Twilio credentials whose sync is due, or who were never synced (every tenant: the
    maintenance pass acts for all of them)."""
    now = utcnow()
    rows = await session.execute(
        select(TwilioCredential.tenant_id)
        .outerjoin(ContentSync, ContentSync.tenant_id == TwilioCredential.tenant_id)
        .where(or_(ContentSync.id.is_(None), ContentSync.due_at <= now))
        .order_by(ContentSync.due_at.nulls_first())
        .limit(limit)
    )
    return [tenant_id for (tenant_id,) in rows]


async def claim(session: AsyncSession, tenant_id: uuid.UUID) -> bool:
    """Take the tenant's due sync for this process (committed at once), so that two workers' maintenance
    passes do not both call Twilio for it. False when another process took it first."""
    now = utcnow()
    result = await session.execute(
        update(ContentSync)
        .where(owned_by(ContentSync, tenant_id), ContentSync.due_at <= now)
        .values(due_at=now + CLAIM_FOR, attempted_at=now)
        .execution_options(synchronize_session=False)
    )
    claimed = bool(getattr(result, "rowcount", 0))
    if not claimed and await state_of(session, tenant_id) is None:
        try:
            async with session.begin_nested():
                SyncRepository(session, tenant_id).add(ContentSync(due_at=now + CLAIM_FOR, attempted_at=now, items=0))
                await session.flush()
            claimed = True
        except IntegrityError:  # another process made the row first: it has the claim
            claimed = False
    await session.commit()
    return claimed
