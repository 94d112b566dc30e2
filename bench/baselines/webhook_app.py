"""Baseline for webhook ingest: the irreducible work of receiving a Twilio status callback.

Parse the form, check the HMAC-SHA1 X-Twilio-Signature against the account's auth token (held in
memory, as any server would after its first lookup; the check is written out here, so nothing is
imported from the product and a product change does not move the baseline), one Redis SETNX (dedupe), one INSERT (the raw
callback, as JSONB, through an asyncpg pool of the API's size), answer 204. Nothing else: no
tenant lookup, no decryption, no ORM, no outbox, no problem+json, no middleware.

Served by bench/common.py with `notifygw serve`'s exact uvicorn settings. Configured by:
BENCH_BASELINE_DSN, BENCH_BASELINE_REDIS_URL, BENCH_BASELINE_PREFIX, BENCH_BASE_URL (the URL the
signatures cover) and BENCH_BASELINE_TOKENS (JSON {AccountSid: auth token}).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

from litestar import Litestar, Request, get, post
from litestar.response import Response

PATH = "/webhooks/twilio/status"


def twilio_signature(token: str, url: str, form: list[tuple[str, str]]) -> str:
    """Twilio's scheme: base64(HMAC-SHA1(token, url + name + value ...)), names sorted, each value once."""
    grouped: dict[str, set[str]] = {}
    for name, value in form:
        grouped.setdefault(name, set()).add(value)
    signed = url + "".join(name + value for name in sorted(grouped) for value in sorted(grouped[name]))
    return base64.b64encode(hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()).decode()


@post(PATH, status_code=204)
async def twilio_status(request: Request[Any, Any, Any]) -> Response[None]:
    state = request.app.state
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return Response(None, status_code=400)
    form = parse_qsl((await request.body()).decode(), keep_blank_values=True)
    fields = dict(form)
    token = state.tokens.get(fields.get("AccountSid", ""))
    query = request.scope.get("query_string", b"").decode("latin-1")
    url = state.base_url + PATH + (f"?{query}" if query else "")
    if token is None or not hmac.compare_digest(
        twilio_signature(token, url, form), request.headers.get("x-twilio-signature", "")
    ):
        return Response(None, status_code=403)
    sid, status = fields.get("MessageSid"), fields.get("MessageStatus")
    if not sid or not status:
        return Response(None, status_code=400)
    dedupe = request.headers.get("i-twilio-idempotency-token") or f"{sid}:{status}"
    if await state.redis.set(f"{state.prefix}:dedupe:{dedupe}", b"1", nx=True, ex=86400):
        await state.pool.execute(
            "INSERT INTO bench_baseline_events (id, account_sid, message_sid, status, payload) VALUES ($1, $2, $3, $4, $5)",
            uuid.uuid4(),
            fields["AccountSid"],
            sid,
            status,
            json.dumps({"form": form, "query": query}),
        )
    return Response(None, status_code=204)


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
        app.state.base_url = os.environ["BENCH_BASE_URL"]
        app.state.tokens = json.loads(os.environ["BENCH_BASELINE_TOKENS"])
        try:
            yield
        finally:
            await app.state.pool.close()
            await app.state.redis.aclose()

    return Litestar(
        route_handlers=[twilio_status, healthz],
        lifespan=[lifespan],
        openapi_config=None,
        debug=False,
        logging_config=None,
    )
