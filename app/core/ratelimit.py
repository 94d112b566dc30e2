"""GCRA rate limiting: atomic in Redis (one Lua script), in memory for the embedded default.

Used for per-sender WhatsApp pacing and the per-tenant API limit. `acquire` never sleeps: it
answers (allowed, seconds to wait), and the caller reschedules or answers 429.
"""

from __future__ import annotations

import asyncio
import threading
import time
from functools import lru_cache
from typing import Any, Protocol

from app.core.config import get_settings

_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return {0, tostring(allow_at - now)}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return {1, '0'}
"""


class Limiter(Protocol):
    async def acquire(self, key: str, rate_per_second: float, burst: int = 1) -> tuple[bool, float]: ...


def _params(rate_per_second: float, burst: int) -> tuple[float, float]:
    interval = 1.0 / rate_per_second
    return interval, interval * max(burst - 1, 0)


class RedisLimiter:
    def __init__(self, url: str, namespace: str = "notifygw") -> None:
        self._url = url
        self._namespace = namespace
        self._scripts: dict[int, Any] = {}

    def _script(self) -> Any:
        """The GCRA script on this event loop's client (redis.asyncio connections are loop-bound).

        A registered script runs by EVALSHA: EVAL would send and hash the source on every request."""
        import redis.asyncio as aioredis

        loop = id(asyncio.get_running_loop())
        script = self._scripts.get(loop)
        if script is None:
            client = aioredis.Redis.from_url(self._url, socket_timeout=1.0, socket_connect_timeout=0.5)
            script = self._scripts[loop] = client.register_script(_GCRA)
        return script

    async def acquire(self, key: str, rate_per_second: float, burst: int = 1) -> tuple[bool, float]:
        interval, tolerance = _params(rate_per_second, burst)
        allowed, wait = await self._script()(keys=[f"{self._namespace}:rl:{key}"], args=[interval, tolerance])
        return bool(int(allowed)), float(wait)


class MemoryLimiter:
    def __init__(self) -> None:
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    async def acquire(self, key: str, rate_per_second: float, burst: int = 1) -> tuple[bool, float]:
        interval, tolerance = _params(rate_per_second, burst)
        with self._lock:
            now = time.monotonic()
            tat = max(self._tat.get(key, now), now)
            if now < tat - tolerance:
                return False, tat - tolerance - now
            self._tat[key] = tat + interval
            return True, 0.0


@lru_cache(maxsize=1)
def limiter() -> Limiter:
    settings = get_settings()
    return RedisLimiter(settings.redis_url, settings.redis_namespace) if settings.redis_url else MemoryLimiter()
