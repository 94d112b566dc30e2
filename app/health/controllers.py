"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get
from sqlalchemy import text

from app.core.db import get_engine
from app.core.problems import problem_response
from app.core.queue import get_broker


@get("/healthz", tags=["health"], summary="Liveness: 200 while the process lives")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _database_ok() -> bool:
    try:
        async with asyncio.timeout(2):
            async with get_engine().connect() as conn:
                await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


async def _broker_ok() -> bool:
    client = getattr(get_broker(), "client", None)
    if client is None:  # in-process broker (dev): nothing to reach
        return True
    try:
        return bool(await asyncio.wait_for(asyncio.to_thread(client.ping), timeout=2))
    except Exception:
        return False


@get("/readyz", tags=["health"], summary="Readiness: 200 when the database and the broker answer, else 503 problem")
async def readyz(request: Request[Any, Any, Any]) -> Response[Any]:
    database, broker = await asyncio.gather(_database_ok(), _broker_ok())
    down = [name for name, ok in (("database", database), ("broker", broker)) if not ok]
    if down:
        return problem_response(
            request,
            status=503,
            title="Service unavailable",
            slug="unavailable",
            detail=f"not ready: {', '.join(down)} down",
            headers={"Retry-After": "5"},
            down=down,
        )
    return Response({"status": "ready", "database": "ok", "broker": "ok"})


ROUTES = [healthz, readyz]
