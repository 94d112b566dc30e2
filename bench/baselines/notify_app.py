"""Baseline for notify accept: the irreducible work of accepting `POST /v1/notifications`.

Check a bearer key (one constant-time compare against a key held in memory), decode and validate
the JSON body into the app's own `NotificationIn` (Litestar + msgspec, as the real app does), one INSERT of the
notification (asyncpg pool of the API's size, autocommit), one enqueue (Redis LPUSH of the id),
answer 202 with `{id, status, created_at}`. No tenant lookup, rate limit, template or contact
resolution, ORM, outbox or problem+json.

Served by bench/common.py with `notifygw serve`'s exact uvicorn settings. Configured by:
BENCH_BASELINE_DSN, BENCH_BASELINE_REDIS_URL, BENCH_BASELINE_PREFIX, BENCH_BASELINE_API_KEY.
"""

from __future__ import annotations

import hmac
import json
import os
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, AsyncIterator

import msgspec
from litestar import Litestar, Request, get, post
from litestar.response import Response

from app.notify.schemas import NotificationIn  # the real request schema: same decoding and validation


class Accepted(msgspec.Struct):
    id: uuid.UUID
    status: str
    created_at: datetime


@post("/v1/notifications", status_code=202)
async def create(request: Request[Any, Any, Any], data: NotificationIn) -> Response[Accepted]:
    state = request.app.state
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(key.encode(), state.api_key):
        return Response(None, status_code=401)  # type: ignore[arg-type]
    nid, now = uuid.uuid4(), datetime.now(timezone.utc)
    recipient = {k: v for k, v in msgspec.structs.asdict(data.to).items() if v is not None}
    await state.pool.execute(
        "INSERT INTO bench_baseline_notifications (id, tenant, recipient, template, variables, status, created_at) "
        "VALUES ($1, $2, $3, $4, $5, 'accepted', $6)",
        nid, "bench", json.dumps(recipient), data.template, json.dumps({k: str(v) for k, v in data.variables.items()}), now)
    await state.redis.lpush(f"{state.prefix}:queue:notifications", str(nid))
    return Response(Accepted(id=nid, status="accepted", created_at=now), status_code=202)


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def create_app() -> Litestar:
    import asyncpg
    import redis.asyncio as aioredis

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(os.environ["BENCH_BASELINE_DSN"], min_size=2, max_size=10)
        app.state.redis = aioredis.Redis.from_url(os.environ["BENCH_BASELINE_REDIS_URL"], socket_timeout=1.0)
        app.state.prefix = os.environ["BENCH_BASELINE_PREFIX"]
        app.state.api_key = os.environ["BENCH_BASELINE_API_KEY"].encode()
        try:
            yield
        finally:
            await app.state.pool.close()
            await app.state.redis.aclose()

    return Litestar(route_handlers=[create, healthz], lifespan=[lifespan], openapi_config=None, debug=False,
                    logging_config=None)
