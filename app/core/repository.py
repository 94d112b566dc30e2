"""Tenant-scoped repositories: every query starts from a statement already filtered by tenant_id.

Controllers never add tenant filters by hand. Another tenant's row is simply not found (404).
`owned_by` is the filter itself, for the few statements that are not a repository's (a bulk
delete, an upsert's conflict scope); app/notify/lookups.py holds the hot-path reads.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from app.core.db import Base
from app.core.errors import NotFound

M = TypeVar("M", bound=Base)
_ONE_BY: dict[tuple[Any, ...], Any] = {}


def owned_by(
    model: Any, tenant_id: uuid.UUID | ColumnElement[uuid.UUID] | QueryableAttribute[uuid.UUID]
) -> ColumnElement[bool]:
    """`model.tenant_id == tenant_id`, written once (tests/meta/test_tenant_scoping.py). The tenant may be
    another table's column, in a correlated subquery: the same tenant as the row it is read for."""
    return model.tenant_id == tenant_id  # type: ignore[no-any-return]


class TenantRepository(Generic[M]):
    model: type[M]

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def statement(self) -> Select[M]:
        return select(self.model).where(owned_by(self.model, self.tenant_id))

    async def get(self, id_: uuid.UUID | str, *, what: str | None = None) -> M:
        found = await self.find(id_)
        if found is None:
            raise NotFound(f"{what or self.model.__name__.lower()} not found")
        return found

    async def find(self, id_: uuid.UUID | str) -> M | None:
        try:
            key = id_ if isinstance(id_, uuid.UUID) else uuid.UUID(str(id_))
        except ValueError:
            return None
        return await self.one_by(id=key)

    async def one_by(self, **filters: Any) -> M | None:
        if type(self).statement is not TenantRepository.statement:  # a narrower scope: built as it says
            return (await self.session.scalars(self.statement().filter_by(**filters))).one_or_none()
        # Built once per model and filter names, then run with bound values: the hot paths call this
        # per job, and building the statement and walking it for its cache key cost more than running it.
        nulls = frozenset(name for name, value in filters.items() if value is None)
        shape = (self.model, tuple(sorted(filters)), nulls)
        stmt = _ONE_BY.get(shape)
        if stmt is None:
            stmt = _ONE_BY[shape] = select(self.model).where(
                owned_by(self.model, bindparam("owner")),
                *(
                    getattr(self.model, name).is_(None)
                    if name in nulls
                    else getattr(self.model, name) == bindparam(name)
                    for name in shape[1]
                ),
            )
        params = {"owner": self.tenant_id, **{name: value for name, value in filters.items() if name not in nulls}}
        return (await self.session.scalars(stmt, params)).one_or_none()

    async def count(self) -> int:
        stmt = select(func.count()).select_from(self.model).where(owned_by(self.model, self.tenant_id))
        return int((await self.session.execute(stmt)).scalar_one())

    async def all(self, stmt: Select[M] | None = None) -> Sequence[M]:
        return (await self.session.scalars(stmt if stmt is not None else self.statement())).all()

    def add(self, row: M) -> M:
        row.tenant_id = self.tenant_id  # type: ignore[attr-defined]
        self.session.add(row)
        return row

    async def delete(self, row: M) -> None:
        await self.session.delete(row)


def repository(session: AsyncSession, tenant_id: uuid.UUID, model: type[M]) -> TenantRepository[M]:
    """A scoped repository for a model chosen at run time (a quota's counted table, a provider's credentials)."""
    repo: TenantRepository[M] = TenantRepository(session, tenant_id)
    repo.model = model
    return repo
