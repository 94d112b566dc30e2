"""Tenant-scoped repositories: every query starts from a statement already filtered by tenant_id.

Controllers never add tenant filters by hand. Another tenant's row is simply not found (404).
"""

from __future__ import annotations

import uuid
from typing import Any, Generic, Sequence, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Base
from app.core.errors import NotFound

M = TypeVar("M", bound=Base)


class TenantRepository(Generic[M]):
    model: type[M]

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def statement(self) -> Select[tuple[M]]:
        return select(self.model).where(self.model.tenant_id == self.tenant_id)  # type: ignore[attr-defined]

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
        return (await self.session.execute(self.statement().where(self.model.id == key))).scalar_one_or_none()  # type: ignore[attr-defined]

    async def one_by(self, **filters: Any) -> M | None:
        stmt = self.statement().filter_by(**filters)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def all(self, stmt: Select[tuple[M]] | None = None) -> Sequence[M]:
        return (await self.session.execute(stmt if stmt is not None else self.statement())).scalars().all()

    def add(self, row: M) -> M:
        row.tenant_id = self.tenant_id  # type: ignore[attr-defined]
        self.session.add(row)
        return row

    async def delete(self, row: M) -> None:
        await self.session.delete(row)
