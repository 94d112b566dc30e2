"""Counts SQL statements, transactions and Redis commands per request route / per Dramatiq actor.

Used only by bench/sql_trace.py, inside the processes it starts (never imported by the app):

    python bench/_tracer.py serve PORT          # the API, as `notifygw serve` runs it, traced
    python -m dramatiq bench._tracer_worker ...  # the worker, traced (see bench/_tracer_worker.py)

Each statement is attributed to a context variable: the request's `METHOD /path` (set by an ASGI
wrapper) or the actor's name (set by a wrapper around each actor). SQLAlchemy's greenlets carry
context variables, so statements run inside `greenlet_spawn` are attributed too. The counters
are written to $BENCH_TRACE_DIR/trace-<pid>.json every second.
"""

from __future__ import annotations

import collections
import contextvars
import json
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

CTX: contextvars.ContextVar[str] = contextvars.ContextVar("bench_ctx", default="(outside a request or job)")
_counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
_calls: collections.Counter[str] = collections.Counter()
_lock = threading.Lock()
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+\"?([a-z_]+)", re.I)
_UUIDISH = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}")


def _bump(what: str) -> None:
    ctx = CTX.get()
    with _lock:
        _counts[ctx][what] += 1


def classify(sql: str) -> str:
    s = sql.lstrip()
    verb = s.split(None, 1)[0].upper() if s else "?"
    m = _TABLE.search(s)
    lock = " FOR UPDATE" if "FOR UPDATE" in s.upper() else ""
    return f"SQL {verb} {m.group(1) if m else ''}{lock}".rstrip()


def install_sql() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "before_cursor_execute")
    def _stmt(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        _bump(classify(statement))

    for name in ("begin", "commit", "rollback", "savepoint", "release_savepoint", "rollback_savepoint"):
        event.listen(Engine, name, (lambda n: lambda *a, **k: _bump(f"TX {n}"))(name))


def install_redis() -> None:
    import redis.asyncio.client as aclient
    import redis.client as sclient

    sync_exec = sclient.Redis.execute_command

    def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        _bump(f"redis {str(args[0]).upper()}")
        return sync_exec(self, *args, **options)

    sclient.Redis.execute_command = execute_command  # type: ignore[method-assign]
    async_exec = aclient.Redis.execute_command

    async def aexecute_command(self: Any, *args: Any, **options: Any) -> Any:
        _bump(f"redis {str(args[0]).upper()}")
        return await async_exec(self, *args, **options)

    aclient.Redis.execute_command = aexecute_command  # type: ignore[method-assign]


def _dump_loop() -> None:
    out = Path(os.environ["BENCH_TRACE_DIR"]) / f"trace-{os.getpid()}.json"
    stop = threading.Event()
    while not stop.wait(1.0):
        with _lock:
            data = {
                "pid": os.getpid(),
                "role": os.environ.get("BENCH_TRACE_ROLE", "?"),
                "calls": dict(_calls),
                "counts": {k: dict(v) for k, v in _counts.items()},
            }
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(out)


def install(role: str) -> None:
    os.environ["BENCH_TRACE_ROLE"] = role
    install_sql()
    install_redis()
    threading.Thread(target=_dump_loop, name="bench-tracer", daemon=True).start()


def asgi_wrapper(app: Any) -> Any:
    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await app(scope, receive, send)
        path = scope["path"]
        path = _UUIDISH.sub("{id}", path)
        key = f"{scope['method']} {path}"
        CTX.set(key)
        with _lock:
            _calls[key] += 1
        return await app(scope, receive, send)

    return wrapped


def wrap_actors(broker: Any) -> None:
    from dramatiq.asyncio import async_to_sync

    for actor in broker.actors.values():
        original = getattr(actor.fn, "__wrapped__", None)
        if original is None:
            continue

        def make(name: str, fn: Any) -> Any:
            async def traced(*args: Any, **kwargs: Any) -> Any:
                CTX.set(f"job {name}")
                with _lock:
                    _calls[f"job {name}"] += 1
                return await fn(*args, **kwargs)

            return traced

        actor.fn = async_to_sync(make(actor.actor_name, original))


def serve(port: int) -> None:
    """`notifygw serve`'s uvicorn settings, with the tracer installed first."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    install("api")
    import uvicorn

    from app.asgi import create_app

    app = create_app()
    app.asgi_handler = asgi_wrapper(app.asgi_handler)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        proxy_headers=False,
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]))
