"""Dramatiq wiring: the broker, the one actor wrapper, and jobs sent only after commit.

Redis is disposable: every job's state of record is a database row (the outbox), so a job that is
lost here is found again by the sweeper. Jobs carry ids only, never secrets or message bodies.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, TypeVar

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO, CurrentMessage
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.core.config import Settings, get_settings
from app.core.db import session_factory

log = logging.getLogger("notifygw.queue")

_broker: dramatiq.Broker | None = None

# Tenant lanes: each queue is split into LANES sub-queues, and a tenant's jobs always go to the lane of
# its id. A worker consumes every lane side by side, so a tenant that floods one lane delays only the
# tenants that share it, not all of them (Dramatiq alone serves one queue first in, first out).
# API and workers must agree on this number: it is a constant, not a setting.
LANES = 4
_LANE = re.compile(r"\.lane\d+$")


def lane_of(queue: str, tenant_id: uuid.UUID) -> str:
    return f"{queue}.lane{tenant_id.int % LANES}"


def base_queue(queue: str) -> str:
    """`whatsapp.lane2` -> `whatsapp` (delay queues keep their `.DQ`)."""
    dq = queue.endswith(".DQ")
    name = _LANE.sub("", queue.removesuffix(".DQ"))
    return name + ".DQ" if dq else name


def with_lanes(queues: tuple[str, ...] | list[str]) -> list[str]:
    return [name for q in queues for name in (q, *(f"{q}.lane{i}" for i in range(LANES)))]


def setup_broker(settings: Settings | None = None) -> dramatiq.Broker:
    """Redis when NOTIFYGW_REDIS_URL is set; Dramatiq's in-process StubBroker otherwise (dev only)."""
    global _broker
    if _broker is not None:
        return _broker
    settings = settings or get_settings()
    if settings.redis_url:
        from dramatiq.brokers.redis import RedisBroker
        import redis

        # Short socket timeouts: with Redis down, enqueue fails fast and the outbox keeps the job.
        pool = redis.ConnectionPool.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=0.5)
        broker: dramatiq.Broker = RedisBroker(connection_pool=pool, namespace=settings.redis_namespace)
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    broker.add_middleware(AsyncIO())
    broker.add_middleware(CurrentMessage())
    dramatiq.set_broker(broker)
    _broker = broker
    return broker


def get_broker() -> dramatiq.Broker:
    return setup_broker()


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def task(name: str, *, queue: str, max_retries: int = 5, time_limit_ms: int = 60_000, **options: Any) -> Callable[[F], dramatiq.Actor]:
    """Declare an async actor with an explicit name and its own queue.

    The wrapped function receives a fresh session first; the session commits when the function
    returns, rolls back if it raises, and jobs it deferred are sent only after that commit.
    """

    def decorate(fn: F) -> dramatiq.Actor:
        async def run(*args: Any) -> Any:
            async with session_factory()() as session:
                try:
                    result = await fn(session, *args)
                    await session.commit()
                    return result
                except BaseException:
                    await session.rollback()
                    raise

        run.__name__ = run.__qualname__ = name.replace(".", "_")
        run.__module__ = fn.__module__
        broker = get_broker()
        for lane in with_lanes([queue])[1:]:
            broker.declare_queue(lane)
        return dramatiq.actor(
            run,
            actor_name=name,
            queue_name=queue,
            broker=broker,
            max_retries=max_retries,
            # An unexpected error (a deadlock, a dropped connection) is retried soon, not in minutes:
            # domain retries with their own backoff are scheduled by the pipeline, not by Dramatiq.
            min_backoff=500,
            max_backoff=30_000,
            time_limit=time_limit_ms,
            **options,
        )

    return decorate


@dataclass(frozen=True)
class PendingJob:
    actor: dramatiq.Actor
    args: tuple[Any, ...]
    delay_ms: int | None
    tenant_id: uuid.UUID | None = None  # picks the lane; None for the actor's own queue


def defer(session: AsyncSession, actor: dramatiq.Actor, *args: Any, delay_ms: int | None = None,
          tenant_id: uuid.UUID | None = None) -> None:
    """Buffer a job on the unit of work; it is sent after commit and dropped on rollback."""
    for arg in args:
        if not isinstance(arg, (str, int, float, bool, type(None))):
            raise TypeError(f"jobs carry ids only, got {type(arg).__name__}")
    session.sync_session.info.setdefault("pending_jobs", []).append(PendingJob(actor, args, delay_ms, tenant_id))


def send_now(job: PendingJob) -> bool:
    """Enqueue one job. A broker outage is logged, not raised: the outbox row brings it back later."""
    try:
        message = job.actor.message_with_options(args=job.args)
        if job.tenant_id is not None:
            message = message.copy(queue_name=lane_of(job.actor.queue_name, job.tenant_id))
        job.actor.broker.enqueue(message, delay=job.delay_ms)
        return True
    except Exception as exc:  # redis.ConnectionError, TimeoutError, ...
        log.warning("enqueue failed; the sweeper will re-enqueue", extra={"actor": job.actor.actor_name, "error": type(exc).__name__})
        return False


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    jobs: list[PendingJob] = session.info.pop("pending_jobs", [])
    for job in jobs:
        send_now(job)


@event.listens_for(Session, "after_rollback")
def _drop_after_rollback(session: Session) -> None:
    session.info.pop("pending_jobs", None)
