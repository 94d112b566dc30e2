"""Baseline for notify accept: the irreducible work of accepting `POST /v1/notifications`.

Check a bearer key (one constant-time compare against a key held in memory), decode and validate
the JSON body into a msgspec Struct of the request's shape, defined here (Litestar + msgspec, as the
real app does; nothing is imported from the product, so a product change does not move it), one INSERT of the
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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Litestar, Request, get, post
from litestar.response import Response

Channel = Literal["whatsapp", "email"]
VarValue = str | int | float | bool
Short = Annotated[str, msgspec.Meta(max_length=64)]


class Recipient(msgspec.Struct, forbid_unknown_fields=True):
    phone: Annotated[str, msgspec.Meta(min_length=3, max_length=40)] | None = None
    whatsapp_user_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}(\.ENT)?\.[A-Za-z0-9]{1,128}$")] | None = None
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)] | None = None
    locale: Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] | None = None


class NotificationIn(msgspec.Struct, forbid_unknown_fields=True):
    """The public request's shape and limits (openapi/openapi.json), written out here on purpose."""

    to: Recipient
    template: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,99}$")] | None = None
    variables: Annotated[dict[Short, VarValue], msgspec.Meta(max_length=100)] = {}
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)] | None = None
    media_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    channels: Annotated[list[Channel], msgspec.Meta(min_length=1, max_length=2)] = msgspec.field(
        default_factory=lambda: ["whatsapp", "email"]
    )
    metadata: dict[str, Any] = {}


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
    nid, now = uuid.uuid4(), datetime.now(UTC)
    recipient = {k: v for k, v in msgspec.structs.asdict(data.to).items() if v is not None}
    await state.pool.execute(
        "INSERT INTO bench_baseline_notifications (id, tenant, recipient, template, variables, status, created_at) "
        "VALUES ($1, $2, $3, $4, $5, 'accepted', $6)",
        nid,
        "bench",
        json.dumps(recipient),
        data.template,
        json.dumps({k: str(v) for k, v in data.variables.items()}),
        now,
    )
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

    return Litestar(
        route_handlers=[create, healthz], lifespan=[lifespan], openapi_config=None, debug=False, logging_config=None
    )
