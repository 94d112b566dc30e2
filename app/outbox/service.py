"""Transactional outbox: record the work with the change, send the job after commit, sweep the rest.

Each kind of work has one actor (`job`), and the kind-to-actor table is the declared actors: the
explicit list ACTORS in app/actors.py, given to `app.core.queue.declare` at start-up. Nothing is
registered by importing a module.

Every job has a bounded number of tries: a run that raises and a sweep that has to resend it both
count, and a run that makes progress (completes, or reschedules itself) starts the count again.
Past MAX_TRIES the row stops in `dead`: it is never run or swept again until an operator retries
it (GET/POST /operator/v1/dead-letters, `notifygw dead-letters`). Work held while its tenant is
suspended (`hold`) is not a try: the sweeper resends it once the tenant is active again.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import insert_on_conflict, insert_with, session_factory, table_of, utcnow
from app.core.errors import Conflict, NotFound
from app.core.logging import get_logger
from app.core.pagination import page_of, paginate
from app.core.queue import Actor, NotDeclared, PendingJob, declared, defer, send_now
from app.core.repository import owned_by
from app.metrics import registry as metrics
from app.outbox.failures import describe
from app.outbox.models import OutboxItem
from tenants.accounts.models import Tenant

log = get_logger("notifygw.outbox")
# (session, ref_id, last error) -> records the dead letter where its owner shows it (a decision, ...).
OnDead = Callable[[AsyncSession, uuid.UUID, str], Awaitable[None]]
# Past this, a pending item is presumed lost in the queue (Redis flushed, enqueue failed) and resent.
SWEEP_AFTER = timedelta(seconds=30)
# Failed runs plus sweeps, in a row, after which a job is dead. With Dramatiq's backoff (0.5 s doubling
# to 30 s) a job that fails every time is dead after about 2.5 minutes.
MAX_TRIES = 10
TABLE = table_of(OutboxItem)


class OutboxActor(Actor):
    """The actor for one kind of outbox work: its single argument is the row's ref id."""

    def __init__(self, kind: str, name: str, fn: Any, *, on_dead: OnDead | None = None, **options: Any) -> None:
        super().__init__(name, fn, **options)
        self.kind, self.on_dead = kind, on_dead


def job(
    kind: str, name: str, *, queue: str, on_dead: OnDead | None = None, **options: Any
) -> Callable[..., OutboxActor]:
    """An actor for one kind of outbox work, with its failures counted against MAX_TRIES. Dramatiq's
    own retry limit sits above ours, as a backstop. List it in app/actors.py."""

    def decorate(fn: Any) -> OutboxActor:
        async def on_failure(args: tuple[Any, ...], exc: Exception) -> bool:
            return await record_failure(kind, args[0] if args else None, exc)

        return OutboxActor(
            kind, name, fn, on_dead=on_dead, queue=queue, max_retries=MAX_TRIES + 2, on_failure=on_failure, **options
        )

    return decorate


def find_actor(kind: str) -> OutboxActor | None:
    """The declared actor that does `kind` work (None when this version has none)."""
    for actor in declared():
        if isinstance(actor, OutboxActor) and actor.kind == kind:
            return actor
    return None


def actor_for(kind: str) -> OutboxActor:
    actor = find_actor(kind)
    if actor is None:
        raise NotDeclared(f"no declared actor does outbox kind {kind!r}: add it to ACTORS in app/actors.py")
    return actor


async def enqueue(
    session: AsyncSession, tenant_id: uuid.UUID, kind: str, ref_id: uuid.UUID, *, delay_ms: int = 0
) -> None:
    """Record (or reschedule) the work in this transaction; its job is sent only after commit.

    One upsert, new row or not: enqueue runs on every accept, callback, route, send and retry. A dead
    row is left as it is (and no job is sent): only an operator's retry brings it back."""
    now = utcnow()
    available = now + timedelta(milliseconds=delay_ms)
    stmt = insert_on_conflict(session, TABLE).values(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        kind=kind,
        ref_id=ref_id,
        state="pending",
        available_at=available,
        tries=0,
        created_at=now,
        updated_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["kind", "ref_id"],
        set_={"state": "pending", "available_at": available, "updated_at": now, "tries": 0},
        where=owned_by(OutboxItem, tenant_id) & (TABLE.c.state != "dead"),
    ).returning(TABLE.c.id)
    if (await session.execute(stmt)).first() is None:
        return
    defer(session, actor_for(kind), str(ref_id), delay_ms=delay_ms or None, tenant_id=tenant_id)


async def enqueue_new(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    kind: str,
    ref_id: uuid.UUID,
    *,
    along: tuple[Table, dict[str, Any]] | None = None,
    along_unless: list[str] | None = None,
    now: datetime | None = None,
) -> bool:
    """Record work on a row that this transaction creates, and send its job after commit.

    `ref_id` is new, so there is nothing to reschedule: a plain INSERT, not `enqueue`'s upsert.
    `along` is that row itself, (table, every column's value: a statement inside a CTE gets no
    Python-side defaults). On PostgreSQL both rows go in one statement, `WITH created AS (INSERT
    ...) INSERT INTO outbox ... SELECT ... FROM created`: one round trip; elsewhere (SQLite) one
    statement after the other. With `along_unless` (columns of a unique key of `along`'s table) a row
    that conflicts there is not inserted, and neither is the work: False, and no job is sent."""
    values = new_row(tenant_id, kind, ref_id, now or utcnow())
    if along is None:
        await session.execute(insert(TABLE).values(values))
    elif along_unless is None:
        await insert_with(session, along, TABLE, [values])
    elif not await insert_with(session, along, TABLE, [values], first_do_nothing_on=along_unless, returning=TABLE.c.id):
        return False
    job_after_commit(session, tenant_id, kind, ref_id)
    return True


def new_row(tenant_id: uuid.UUID, kind: str, ref_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    """Every column of a new pending row (a statement inside a CTE gets no Python-side defaults);
    `now` is the caller's when the row it rides with is stamped with it: due when it was made."""
    return {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "kind": kind,
        "ref_id": ref_id,
        "state": "pending",
        "available_at": now,
        "tries": 0,
        "created_at": now,
        "updated_at": now,
    }


def job_after_commit(session: AsyncSession, tenant_id: uuid.UUID, kind: str, ref_id: uuid.UUID) -> None:
    """The job of an outbox row this session has just written, sent once it commits."""
    defer(session, actor_for(kind), str(ref_id), tenant_id=tenant_id)


def completion(kind: str, ref_id: Any, now: Any = None) -> Any:
    """The UPDATE that `complete` runs, as a CTE to ride on the job's first statement (PostgreSQL runs a
    data-modifying CTE whether or not the statement reads it): one round trip fewer per job."""
    return _completed(kind, ref_id, now).cte(f"{kind.replace('.', '_')}_done")


def _completed(kind: Any, ref_id: Any, now: Any = None) -> Any:
    return (
        update(OutboxItem)
        .where(OutboxItem.kind == kind, OutboxItem.ref_id == ref_id)
        .values(state="done", tries=0, updated_at=utcnow() if now is None else now)
    )


# Every job ends with it: built once (app/notify/lookups.py says why).
_COMPLETE = _completed(bindparam("job_kind"), bindparam("job_ref"), bindparam("done_at"))


async def complete(session: AsyncSession, kind: str, ref_id: uuid.UUID) -> None:
    await session.execute(_COMPLETE, {"job_kind": kind, "job_ref": ref_id, "done_at": utcnow()})


async def hold(session: AsyncSession, kind: str, ref_id: uuid.UUID) -> None:
    """Park the work until its tenant is active again (not a try; the sweeper resends it then)."""
    await session.execute(
        update(OutboxItem)
        .where(OutboxItem.kind == kind, OutboxItem.ref_id == ref_id, OutboxItem.state == "pending")
        .values(state="held", tries=0, updated_at=utcnow())
    )


async def record_failure(kind: str, ref: Any, exc: Exception) -> bool:
    """Count a failed run of (kind, ref), in a session of its own (the job's rolled back). True when
    Dramatiq should run it again; False once it is dead, or when no pending row is left to run."""
    error = describe(exc)
    try:
        ref_id = uuid.UUID(str(ref))
    except ValueError:
        log.warning("job with a malformed id dropped", kind=kind, error=error)
        return False
    async with session_factory()() as session:
        stmt = select(OutboxItem).where(OutboxItem.kind == kind, OutboxItem.ref_id == ref_id)
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        item = (await session.execute(stmt)).scalar_one_or_none()
        if item is None or item.state != "pending":  # finished by another run, dead, held, or deleted
            log.warning("job failed; nothing left pending to retry", kind=kind, ref_id=str(ref_id), error=error)
            return False
        now = utcnow()
        item.tries += 1
        item.last_error = error
        item.available_at = now  # Dramatiq retries it; the sweeper only if that retry is lost too
        dead = item.tries >= MAX_TRIES
        if dead:
            await _bury(session, item, now)
        log.warning(
            "job dead-lettered" if dead else "job failed", kind=kind, ref_id=str(ref_id), tries=item.tries, error=error
        )
        await session.commit()
        return not dead


async def _bury(session: AsyncSession, item: OutboxItem, now: Any) -> None:
    item.state, item.dead_at = "dead", now
    metrics.DEAD_LETTERS.labels(item.kind).inc()
    actor = find_actor(item.kind)
    if actor is not None and actor.on_dead is not None:
        await actor.on_dead(session, item.ref_id, item.last_error or "")


def _sweep_gap(tries: int) -> timedelta:
    """Sweeps of one row spread out, doubling up to about half an hour apart: a job stuck behind a long
    backlog is resent rarely, and is not dead until it has waited about two hours."""
    return SWEEP_AFTER * (min(2**tries, 64) - 1)  # type: ignore[no-any-return]  # timedelta * int is a timedelta


async def sweep(session: AsyncSession, *, limit: int = 500) -> int:
    """Re-enqueue pending work that should have run by now, and held work whose tenant is active again.
    Safe on many workers at once."""
    now = utcnow()
    cutoff = now - SWEEP_AFTER
    lost = (
        select(OutboxItem)
        .where(OutboxItem.state == "pending", OutboxItem.available_at < cutoff)
        .order_by(OutboxItem.available_at)
        .limit(limit)
    )
    held = (
        select(OutboxItem)
        .join(Tenant, Tenant.id == OutboxItem.tenant_id)
        .where(OutboxItem.state == "held", Tenant.status == "active")
        .order_by(OutboxItem.updated_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        lost, held = lost.with_for_update(skip_locked=True), held.with_for_update(of=OutboxItem, skip_locked=True)
    resend: list[OutboxItem] = []
    for item in (await session.execute(lost)).scalars().all():
        item.tries += 1
        if item.tries >= MAX_TRIES:
            item.last_error = item.last_error or "never finished: lost or cut off on every run"
            await _bury(session, item, now)
            continue
        item.available_at = now + _sweep_gap(item.tries)
        item.enqueued_at = now
        resend.append(item)
    for item in (await session.execute(held)).scalars().all():
        item.state, item.available_at, item.enqueued_at = "pending", now, now
        resend.append(item)
    await session.commit()
    sent = 0
    for item in resend:
        actor = find_actor(item.kind)
        if actor is not None and send_now(PendingJob(actor.bound(), (str(item.ref_id),), None, item.tenant_id)):
            sent += 1
    return sent


async def pending_stats(session: AsyncSession) -> tuple[int, float]:
    """(pending items, age in seconds of the oldest): the outbox lag."""
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(OutboxItem.created_at)).where(OutboxItem.state == "pending")
        )
    ).one()
    age = (utcnow() - oldest).total_seconds() if oldest else 0.0
    return int(count), max(0.0, age)


async def dead_stats(session: AsyncSession) -> dict[str, int]:
    rows = (
        await session.execute(
            select(OutboxItem.kind, func.count()).where(OutboxItem.state == "dead").group_by(OutboxItem.kind)
        )
    ).all()
    return {kind: int(count) for kind, count in rows}


# --- the operator's view ----------------------------------------------------------------------


async def list_dead(
    session: AsyncSession,
    *,
    kind: str | None,
    tenant_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
    render: Callable[[OutboxItem], Any],
) -> dict[str, Any]:
    stmt = select(OutboxItem).where(OutboxItem.state == "dead")
    if kind:
        stmt = stmt.where(OutboxItem.kind == kind)
    if tenant_id:
        stmt = stmt.where(owned_by(OutboxItem, tenant_id))
    rows = (await session.execute(paginate(stmt, OutboxItem, cursor, limit))).scalars().all()
    return page_of(rows, limit, render)


async def retry_dead(session: AsyncSession, item_id: uuid.UUID) -> OutboxItem:
    """Back to pending with a fresh count of tries, and its job sent after commit."""
    stmt = select(OutboxItem).where(OutboxItem.id == item_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    item = (await session.execute(stmt)).scalar_one_or_none()
    if item is None:
        raise NotFound("dead letter not found")
    if item.state != "dead":
        raise Conflict(f"this job is {item.state}, not dead")
    actor = find_actor(item.kind)
    if actor is None:
        raise Conflict(f"no actor does '{item.kind}' work in this version")
    now = utcnow()
    item.state, item.tries, item.dead_at, item.available_at, item.enqueued_at = "pending", 0, None, now, now
    await session.flush()
    defer(session, actor, str(item.ref_id), tenant_id=item.tenant_id)
    return item
