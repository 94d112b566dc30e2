"""What-if runs: the API (or worker) with proposed performance fixes applied as monkeypatches.

Never imported by the app, and the repository's code is not changed: bench/webhook_ingest.py and
bench/notify_accept.py (`--what-if`) start a third server from here, on the same database, so the
"after" of each proposed fix is measured in the same run as the "before" and the baseline.

    python bench/_patched.py serve PORT        # `notifygw serve`, with $BENCH_PATCHES applied
    python bench/_patched.py emulator PORT     # `notifygw emulator`, with $BENCH_PATCHES applied
    python -m dramatiq bench._patched_worker   # `notifygw worker`, with $BENCH_PATCHES applied

$BENCH_PATCHES is a comma-separated list of the names below (or `all`). Each patch is the smallest
code that behaves like the fix proposed in docs/performance.md, written against today's code.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PATCHES: dict[str, Callable[[], None]] = {}


def patch(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(fn: Callable[[], None]) -> Callable[[], None]:
        PATCHES[name] = fn
        return fn

    return register


def replace_everywhere(original: Any, new: Any) -> int:
    """Rebind every module-level name bound to `original` (callers did `from x import f`)."""
    n = 0
    for module in list(sys.modules.values()):
        d = getattr(module, "__dict__", None)
        if not d or not (getattr(module, "__name__", "").startswith(("app", "tenants", "channels"))):
            continue
        for key, value in list(d.items()):
            if value is original:
                d[key] = new
                n += 1
    return n


@patch("jinja-cache")
def _jinja_cache() -> None:
    """tenants/templates/rendering.py: referenced_variables parses the Jinja source of subject, text and
    html on every call (every POST /v1/notifications). Cache the undeclared names per (field, source)."""
    from functools import lru_cache

    import jinja2
    from jinja2 import meta

    from tenants.templates import rendering as r

    @lru_cache(maxsize=4096)
    def undeclared(field: str, source: str) -> frozenset[str]:
        return frozenset(meta.find_undeclared_variables(r._env(field).parse(source)))

    def referenced_variables(email: Any) -> set[str]:
        names: set[str] = set()
        for field in ("subject", "text", "html"):
            source = (email or {}).get(field)
            if source:
                try:
                    names |= undeclared(field, source)
                except jinja2.TemplateSyntaxError as exc:
                    raise r.TemplateSyntaxError(field, f"line {exc.lineno}: {exc.message}") from None
        return names

    replace_everywhere(r.referenced_variables, referenced_variables)


def _ttl_cache(fn: Callable[..., Any], key: Callable[..., Any], ttl: float = 5.0) -> Callable[..., Any]:
    entries: dict[Any, tuple[float, Any]] = {}

    async def cached(*args: Any, **kwargs: Any) -> Any:
        k = key(*args, **kwargs)
        hit = entries.get(k)
        now = time.monotonic()
        if hit is not None and now - hit[0] <= ttl:
            return hit[1]
        value = await fn(*args, **kwargs)
        if len(entries) > 10_000:
            entries.clear()
        entries[k] = (now, value)
        return value

    return cached


@patch("policy-cache")
def _policy_cache() -> None:
    """tenants/routing/service.py get_policy: one SELECT + msgspec.convert per call (accept, route, send,
    every inbound). Cache the decoded policy per tenant for 5 s, as credentials already are."""
    from tenants.routing import service

    replace_everywhere(service.get_policy, _ttl_cache(service.get_policy, lambda session, tenant_id: tenant_id))


@patch("template-cache")
def _template_cache() -> None:
    """tenants/templates/service.py get: one SELECT per accept. Cache per (tenant, key) for 5 s (the patch
    caches the loaded row, which accept only reads; the fix would cache a plain snapshot)."""
    from tenants.templates import service

    replace_everywhere(service.get, _ttl_cache(service.get, lambda session, tenant_id, key: (tenant_id, key)))


@patch("outbox-upsert")
def _outbox_upsert() -> None:
    """app/outbox/service.py enqueue: SELECT the row, then INSERT it through the ORM. One Core
    INSERT ... ON CONFLICT (kind, ref_id) DO UPDATE does both, whether the row is new or not."""
    from datetime import timedelta

    from sqlalchemy.dialects.postgresql import insert

    from app.core.db import utcnow
    from app.core.queue import defer
    from app.outbox import service
    from app.outbox.models import OutboxItem

    table = OutboxItem.__table__

    async def enqueue(session: Any, tenant_id: uuid.UUID, kind: str, ref_id: uuid.UUID, *, delay_ms: int = 0) -> None:
        now = utcnow()
        available = now + timedelta(milliseconds=delay_ms)
        stmt = insert(table).values(id=uuid.uuid4(), tenant_id=tenant_id, kind=kind, ref_id=ref_id, state="pending",
                                    available_at=available, created_at=now, updated_at=now)
        stmt = stmt.on_conflict_do_update(index_elements=["kind", "ref_id"],
                                          set_={"state": "pending", "available_at": available, "updated_at": now})
        await session.execute(stmt)
        defer(session, service.actor_for(kind), str(ref_id), delay_ms=delay_ms or None)

    original = service.enqueue
    service.enqueue = enqueue  # callers use `outbox.enqueue`
    replace_everywhere(original, enqueue)


@patch("webhook-store-core")
def _webhook_store_core() -> None:
    """app/webhooks/ingest.py store: SAVEPOINT + ORM flush + RELEASE to catch a duplicate. One Core
    INSERT ... ON CONFLICT DO NOTHING RETURNING id tells new from duplicate in one round trip."""
    from sqlalchemy.dialects.postgresql import insert

    from app.core.db import utcnow
    from app.outbox import service as outbox
    from app.webhooks import ingest
    from app.webhooks.models import RawEvent

    table = RawEvent.__table__

    async def store(session: Any, tenant_id: uuid.UUID, kind: str, dedupe_key: str, payload: dict[str, Any], *,
                    orphan: bool = False) -> bool:
        event_id, now = uuid.uuid4(), utcnow()
        stmt = insert(table).values(id=event_id, tenant_id=tenant_id, kind=kind, dedupe_key=dedupe_key[:200],
                                    payload=payload, orphan=orphan, received_at=now, created_at=now)
        stmt = stmt.on_conflict_do_nothing(index_elements=["tenant_id", "kind", "dedupe_key"]).returning(table.c.id)
        if (await session.execute(stmt)).first() is None:
            return False
        await outbox.enqueue(session, tenant_id, ingest.PROCESS, event_id)
        return True

    replace_everywhere(ingest.store, store)


@patch("no-owner-query")
def _no_owner_query() -> None:
    """app/webhooks/controllers.py _owned_elsewhere: a SELECT on attempts for every status callback. The
    worker's _find_attempt already looks attempts up within the callback's tenant only, so a SID or
    attempt id of another tenant can only ever become an orphan event there: the API-side query can go."""
    from app.webhooks import controllers

    async def _owned_elsewhere(*args: Any, **kwargs: Any) -> bool:
        return False

    controllers._owned_elsewhere = _owned_elsewhere


@patch("limiter-evalsha")
def _limiter_evalsha() -> None:
    """app/core/ratelimit.py RedisLimiter.acquire: EVAL sends the script's source with every call, and
    Redis hashes it each time. register_script() sends EVALSHA (falling back to EVAL once)."""
    from app.core.ratelimit import RedisLimiter, _params

    scripts: dict[int, Any] = {}

    async def acquire(self: Any, key: str, rate_per_second: float, burst: int = 1) -> tuple[bool, float]:
        interval, tolerance = _params(rate_per_second, burst)
        client = self._client()
        script = scripts.get(id(client))
        if script is None:
            script = scripts[id(client)] = client.register_script(self._script_source)
        allowed, wait = await script(keys=[f"{self._namespace}:rl:{key}"], args=[interval, tolerance])
        return bool(int(allowed)), float(wait)

    RedisLimiter.acquire = acquire  # type: ignore[method-assign]


@patch("pacing-burst")
def _pacing_burst() -> None:
    """app/notify/sending.py _pace: acquire(key, rate) with the default burst of 1 makes the GCRA refuse
    any two sends of one sender in the same 1/rate interval, so concurrent worker threads reschedule
    (outbox round trips + a delayed job) sends that were within the rate. Allow 100 ms worth of burst."""
    import math

    from app.core.ratelimit import RedisLimiter

    inner = RedisLimiter.acquire

    async def acquire(self: Any, key: str, rate_per_second: float, burst: int = 1) -> tuple[bool, float]:
        if key.startswith("wa:") and burst == 1:
            burst = max(1, math.ceil(rate_per_second / 10))
        return await inner(self, key, rate_per_second, burst)

    RedisLimiter.acquire = acquire  # type: ignore[method-assign]


def _per_session(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    async def memo(session: Any, *args: Any) -> Any:
        cache = session.sync_session.info.setdefault(f"bench_memo_{name}", {})
        if args not in cache:
            cache[args] = await fn(session, *args)
        return cache[args]

    return memo


@patch("route-memo")
def _route_memo() -> None:
    """app/notify/pipeline.py route/_whatsapp_blocker/_whatsapp_kind/_start_whatsapp call find_twilio 3
    times and whatsapp_address (contacts.identifiers) twice per notification: load once per unit of work."""
    from tenants.contacts import service as contacts
    from tenants.credentials import service as credentials

    original_find, original_idents = credentials.find_twilio, contacts.identifiers
    credentials.find_twilio = _per_session(original_find, "find_twilio")
    contacts.identifiers = _per_session(original_idents, "identifiers")
    replace_everywhere(original_find, credentials.find_twilio)
    replace_everywhere(original_idents, contacts.identifiers)


@patch("decisions-batch")
def _decisions_batch() -> None:
    """app/notify/pipeline.py decide: each Decision added to the session is flushed by the next query's
    autoflush, one INSERT each (5 per routed notification). Collect them and add them all just before
    the commit's flush: one multi-row INSERT."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from app.core.db import utcnow
    from app.notify import pipeline
    from app.notify.models import Decision

    def decide(session: Any, n: Any, step: str, result: str, detail: str | None = None) -> None:
        session.sync_session.info.setdefault("bench_decisions", []).append(Decision(
            tenant_id=n.tenant_id, notification_id=n.id, step=step, result=result, detail=detail, created_at=utcnow()))

    @event.listens_for(Session, "before_commit")
    def _add(session: Any) -> None:
        pending = session.info.pop("bench_decisions", None)
        if pending:
            session.add_all(pending)

    @event.listens_for(Session, "after_rollback")
    def _drop(session: Any) -> None:
        session.info.pop("bench_decisions", None)

    replace_everywhere(pipeline.decide, decide)


@patch("endpoints-cache")
def _endpoints_cache() -> None:
    """app/endpoints/events.py emit: one SELECT of the tenant's webhook endpoints per status change (3 per
    notification). Remember for 5 s that a tenant has no enabled endpoint (invalidated on change in the fix)."""
    from sqlalchemy import func, select

    from app.endpoints import events
    from app.webhooks.models import WebhookEndpoint

    original = events.emit
    none_until: dict[Any, float] = {}

    async def emit(session: Any, tenant_id: uuid.UUID, event_type: str, data: dict[str, Any]) -> int:
        if none_until.get(tenant_id, 0.0) > time.monotonic():
            return 0
        n = (await session.execute(select(func.count()).select_from(WebhookEndpoint).where(
            WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.status == "enabled"))).scalar_one()
        if not n:
            none_until[tenant_id] = time.monotonic() + 5.0
            return 0
        return await original(session, tenant_id, event_type, data)

    events.emit = emit


@patch("emulator-ssl-context")
def _emulator_ssl_context() -> None:
    """channels/emulator/callbacks.py http_client: a new httpx.AsyncClient per message (run_lifecycle) and
    per SendGrid batch, each building an SSLContext and loading certifi's CA bundle into it (~13 ms CPU,
    with the GIL released, so py-spy --gil does not see it). Build the SSLContext once and hand it to
    every client (verify=ctx: ~0.1 ms per client). One client shared by all messages is not the fix:
    with hundreds of lifecycles waiting on its pool, httpcore's pool bookkeeping costs as much."""
    import ssl

    import certifi
    import httpx

    from channels.emulator import callbacks

    ctx = ssl.create_default_context(cafile=certifi.where())
    callbacks.http_client = lambda: httpx.AsyncClient(trust_env=False, follow_redirects=False, verify=ctx)


def serve_emulator(port: int) -> None:
    """`notifygw emulator` (channels.emulator on uvicorn, its CLI's settings), with $BENCH_PATCHES applied."""
    import uvicorn

    from channels.emulator import create_emulator_app

    apply(os.environ.get("BENCH_PATCHES", ""))
    uvicorn.run(create_emulator_app(), host="127.0.0.1", port=port, access_log=False, log_config=None)


def apply(names: str) -> list[str]:
    wanted = list(PATCHES) if names.strip() == "all" else [n.strip() for n in names.split(",") if n.strip()]
    for name in wanted:
        if name not in PATCHES:
            raise SystemExit(f"unknown patch {name!r}; known: {', '.join(PATCHES)}")
    for name in wanted:
        PATCHES[name]()
    return wanted


def serve(port: int) -> None:
    import uvicorn

    from app.asgi import create_app

    app = create_app()
    import_everything()
    wanted = apply(os.environ.get("BENCH_PATCHES", ""))
    sys.stderr.write(f"bench/_patched.py: patches applied: {', '.join(wanted) or 'none'}\n")
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, loop="uvloop", http="httptools", access_log=False,
                log_config=None, proxy_headers=False)


def import_everything() -> None:
    """Import every module a patch rebinds names in, so replace_everywhere reaches all the callers."""
    import importlib

    for name in ("app.notify.service", "app.notify.pipeline", "app.notify.sending", "app.notify.controllers",
                 "app.notify.tasks", "app.webhooks.service", "app.webhooks.controllers", "app.webhooks.ingest",
                 "app.webhooks.tasks", "app.endpoints.events", "tenants.templates.service", "tenants.contacts.service",
                 "tenants.credentials.service"):
        importlib.import_module(name)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]))
    elif sys.argv[1:2] == ["emulator"]:
        serve_emulator(int(sys.argv[2]))
