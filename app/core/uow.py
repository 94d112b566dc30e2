"""The unit of work: what one transaction owes the world, settled when it commits.

A session made by `app.core.db.session_factory()` carries one `UnitOfWork` (`unit_of(session)`):

- rows to add at commit, all in one INSERT (the routing decisions: added one by one, each would be
  flushed alone by the next query);
- jobs to send once the commit has succeeded (ids only; app/core/queue.py `defer`);
- cache entries to invalidate once the commit has succeeded (app/core/ttlcache.py).

`commit()` adds the rows, commits, then sends the jobs and applies the invalidations. `rollback()`
and `close()` drop all three. A SAVEPOINT (`session.begin_nested()`) that rolls back drops what was
queued inside it and keeps what was queued before it, as the database does with the rows.

This replaces session event listeners passing lists through `session.info`: the whole life of a
unit of work is in the methods below, with nothing registered globally.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction


class Job(Protocol):
    def send(self) -> object: ...


class Invalidates(Protocol):
    def invalidate(self, key: Hashable) -> None: ...


Mark = tuple[int, int, int]


class UnitOfWork:
    __slots__ = ("invalidations", "jobs", "rows")

    def __init__(self) -> None:
        self.rows: list[Any] = []
        self.jobs: list[Job] = []
        self.invalidations: list[tuple[Invalidates, Hashable]] = []

    def add_at_commit(self, row: Any) -> None:
        self.rows.append(row)

    def send_after_commit(self, job: Job) -> None:
        self.jobs.append(job)

    def invalidate_after_commit(self, cache: Invalidates, key: Hashable) -> None:
        self.invalidations.append((cache, key))

    def mark(self) -> Mark:
        return len(self.rows), len(self.jobs), len(self.invalidations)

    def rewind(self, mark: Mark) -> None:
        """Forget what was queued since `mark` (a rolled-back savepoint)."""
        rows, jobs, invalidations = mark
        del self.rows[rows:], self.jobs[jobs:], self.invalidations[invalidations:]

    def discard(self) -> None:
        self.rewind((0, 0, 0))

    def take_rows(self) -> list[Any]:
        rows, self.rows = self.rows, []
        return rows

    def settle(self) -> None:
        """After a successful commit: send the jobs, then apply the invalidations."""
        jobs, self.jobs = self.jobs, []
        invalidations, self.invalidations = self.invalidations, []
        for job in jobs:
            job.send()  # never raises: a job that cannot be sent is found again by the outbox sweeper
        for cache, key in invalidations:
            cache.invalidate(key)


def unit_of(session: AsyncSession) -> UnitOfWork:
    unit = getattr(session, "unit", None)
    if not isinstance(unit, UnitOfWork):
        raise TypeError("this session has no unit of work: make it with app.core.db.session_factory()")
    return unit


class UnitOfWorkSession(AsyncSession):
    """An AsyncSession whose commit settles its unit of work (the class every session factory uses)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unit = UnitOfWork()

    async def commit(self) -> None:
        rows = self.unit.take_rows()
        if rows:
            self.add_all(rows)
        await super().commit()
        self.unit.settle()

    async def rollback(self) -> None:
        try:
            await super().rollback()
        finally:
            self.unit.discard()

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            self.unit.discard()

    async def reset(self) -> None:
        try:
            await super().reset()
        finally:
            self.unit.discard()

    async def invalidate(self) -> None:
        try:
            await super().invalidate()
        finally:
            self.unit.discard()

    def begin_nested(self) -> AsyncSessionTransaction:
        return Savepoint(self)


class Savepoint(AsyncSessionTransaction):
    """A SAVEPOINT that, when it rolls back, also forgets what the unit of work queued inside it."""

    __slots__ = ("mark",)

    def __init__(self, session: UnitOfWorkSession) -> None:
        super().__init__(session, nested=True)
        self.mark = session.unit.mark()

    def _rewind(self) -> None:
        mark = getattr(self, "mark", None)  # None on a proxy SQLAlchemy rebuilt: nothing to rewind to
        if mark is not None:
            unit_of(self.session).rewind(mark)

    async def rollback(self) -> None:
        await super().rollback()
        self._rewind()

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        try:
            await super().__aexit__(type_, value, traceback)
        except BaseException:  # releasing the savepoint failed (its flush): SQLAlchemy rolled it back
            self._rewind()
            raise
        if type_ is not None:
            self._rewind()
