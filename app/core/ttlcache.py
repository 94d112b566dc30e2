"""A per-process cache with a short TTL, for tenant configuration read on every request or job.

Routing policies, templates and webhook endpoints change rarely and are read constantly. A change
clears this process's entry when its transaction commits; other processes see it within the TTL,
as API keys and credentials already do (README, "Caches").
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.uow import unit_of

TTL_SECONDS = 5.0
V = TypeVar("V")


class TTLCache(Generic[V]):
    def __init__(self, ttl: float = TTL_SECONDS, max_entries: int = 10_000) -> None:
        self.ttl, self._max = ttl, max_entries
        self._entries: dict[Hashable, tuple[float, V]] = {}

    def get(self, key: Hashable) -> V | None:
        hit = self._entries.get(key)
        if hit is None or time.monotonic() - hit[0] > self.ttl:
            return None
        return hit[1]

    def put(self, key: Hashable, value: V) -> None:
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (time.monotonic(), value)

    def invalidate(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def invalidate_on_commit(self, session: AsyncSession, key: Hashable) -> None:
        """Now, and again after commit: a reader between the two would otherwise cache the old value."""
        self.invalidate(key)
        unit_of(session).invalidate_after_commit(self, key)
