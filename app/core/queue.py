"""Dramatiq wiring: the broker, the one actor wrapper, and jobs sent only after commit (by the unit of work).

Redis is disposable: every job's state of record is a database row (the outbox), so a job that is
lost here is found again by the sweeper. Jobs carry ids only, never secrets or message bodies.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from queue import Empty, SimpleQueue
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import q_name
from dramatiq.middleware import AsyncIO, CurrentMessage, Middleware
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings, get_settings
from app.core.db import session_factory
from app.core.uow import unit_of

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
        # Short socket timeouts: with Redis down, enqueue fails fast and the outbox keeps the job.
        pool = redis.ConnectionPool.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=0.5)
        # The dead letter lives in the database (outbox state `dead`); DropDeadLetters deletes Dramatiq's
        # copy at once, and the short TTL only backs that up.
        broker: dramatiq.Broker = RedisBroker(  # type: ignore[no-untyped-call]  # dramatiq leaves it unannotated
            connection_pool=pool, namespace=settings.redis_namespace, dead_message_ttl=60_000
        )
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    broker.add_middleware(AsyncIO())
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(DropDeadLetters())
    dramatiq.set_broker(broker)
    _broker = broker
    return broker


def get_broker() -> dramatiq.Broker:
    return setup_broker()


class DropDeadLetters(Middleware):
    """Dramatiq moves a message it gives up on, with the traceback of its last failure (which may quote
    personal data), to `<queue>.XQ` for a week. Our dead letter is the outbox row, so that copy is
    deleted as soon as it is made."""

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        if not isinstance(broker, RedisBroker):  # the in-process StubBroker keeps no dead letters
            return
        xq = f"{broker.namespace}:{q_name(message.queue_name)}.XQ"
        ident = message.options.get("redis_message_id", message.message_id)
        try:
            pipe = broker.client.pipeline()
            pipe.zrem(xq, ident)
            pipe.hdel(f"{xq}.msgs", ident)
            pipe.execute()
        except Exception:  # the TTL removes it later
            log.warning("could not drop a dead-lettered message", extra={"queue": message.queue_name})


class JobFailed(Exception):
    """Raised in place of a job's own error, so the traceback Dramatiq stores with a retried message
    names only the class: the error's text (SQL parameters, values) stays out of Redis."""


# (job args, the error) -> True to let Dramatiq retry, False to acknowledge (dead-lettered or moot).
FailureHandler = Callable[[tuple[Any, ...], Exception], Awaitable[bool]]
JobFunction = Callable[..., Awaitable[Any]]


class NotDeclared(LookupError):
    """A job for an actor that `declare` was not given: it belongs in ACTORS in app/actors.py."""


class Actor:
    """An async actor as written: an explicit name, its own queue, and its function.

    Defining one touches no broker. `declare(ACTORS)` binds the actors to the broker (and so to
    Dramatiq) at start-up, in the API, the worker and the CLI alike; a job for an actor that was not
    declared is refused when it is deferred, not lost after commit.

    The function receives a fresh session first; the session commits when the function returns,
    rolls back if it raises, and jobs it deferred are sent only after that commit. `on_failure` is
    told of every error after the rollback and decides whether Dramatiq retries.
    """

    def __init__(
        self,
        name: str,
        fn: JobFunction,
        *,
        queue: str,
        max_retries: int = 5,
        time_limit_ms: int = 60_000,
        on_failure: FailureHandler | None = None,
        **options: Any,
    ) -> None:
        self.actor_name, self.queue_name, self.fn = name, queue, fn
        self.max_retries, self.time_limit_ms, self.on_failure, self.options = (
            max_retries,
            time_limit_ms,
            on_failure,
            options,
        )
        self._bound: dramatiq.Actor[Any, Any] | None = None

    def __repr__(self) -> str:
        return f"<Actor {self.actor_name} on {self.queue_name}>"

    def bound(self) -> dramatiq.Actor[Any, Any]:
        if self._bound is None:
            raise NotDeclared(f"actor {self.actor_name!r} is not declared: add it to ACTORS in app/actors.py")
        return self._bound

    def bind(self, broker: dramatiq.Broker) -> dramatiq.Actor[Any, Any]:
        if self._bound is not None and self._bound.broker is broker:
            return self._bound
        for lane in with_lanes([self.queue_name])[1:]:
            broker.declare_queue(lane)
        self._bound = dramatiq.actor(
            actor_name=self.actor_name,
            queue_name=self.queue_name,
            broker=broker,
            max_retries=self.max_retries,
            # An unexpected error (a deadlock, a dropped connection) is retried soon, not in minutes:
            # domain retries with their own backoff are scheduled by the pipeline, not by Dramatiq.
            min_backoff=500,
            max_backoff=30_000,
            time_limit=self.time_limit_ms,
            **self.options,
        )(self._runner())
        return self._bound

    def _runner(self) -> JobFunction:
        fn, on_failure = self.fn, self.on_failure

        async def run(*args: Any) -> Any:
            async with session_factory()() as session:
                try:
                    result = await fn(session, *args)
                    await session.commit()
                    return result
                except Exception as exc:
                    await session.rollback()
                    if on_failure is None:
                        raise
                    try:
                        retry = await on_failure(args, exc)
                    except Exception:  # the database is down too: Dramatiq retries, the sweeper backs it up
                        retry = True
                    if not retry:
                        return None
                    raise JobFailed(type(exc).__name__) from None
                except BaseException:
                    await session.rollback()
                    raise

        run.__name__ = run.__qualname__ = self.actor_name.replace(".", "_")
        run.__module__ = fn.__module__
        return run


def task(
    name: str,
    *,
    queue: str,
    max_retries: int = 5,
    time_limit_ms: int = 60_000,
    on_failure: FailureHandler | None = None,
    **options: Any,
) -> Callable[[JobFunction], Actor]:
    """Declare an async actor (see `Actor`); list it in app/actors.py so that it is bound and consumed."""

    def decorate(fn: JobFunction) -> Actor:
        return Actor(
            name,
            fn,
            queue=queue,
            max_retries=max_retries,
            time_limit_ms=time_limit_ms,
            on_failure=on_failure,
            **options,
        )

    return decorate


_declared: tuple[Actor, ...] = ()


def declare(actors: Sequence[Actor]) -> dramatiq.Broker:
    """Bind these actors to the broker and make them the ones jobs go to: ACTORS, from app/actors.py."""
    global _declared
    broker = get_broker()
    for actor in actors:
        actor.bind(broker)
    _declared = tuple(actors)
    return broker


def declared() -> tuple[Actor, ...]:
    return _declared


def declared_named(name: str) -> Actor:
    """The declared actor called `name`: how a module reaches an actor it cannot import (a cycle)."""
    for actor in _declared:
        if actor.actor_name == name:
            return actor
    raise NotDeclared(f"actor {name!r} is not declared: add it to ACTORS in app/actors.py")


@dataclass(frozen=True)
class PendingJob:
    actor: dramatiq.Actor[Any, Any]
    args: tuple[Any, ...]
    delay_ms: int | None
    tenant_id: uuid.UUID | None = None  # picks the lane; None for the actor's own queue
    # A nudge: one sent stands for every identical one submitted around the same time (BackgroundSender).
    coalesce: bool = False

    def send(self) -> bool:
        """After commit. To Redis from the background sender when called on an event loop (the API's
        requests, async actors): Dramatiq's broker is synchronous, and the loop must never wait on
        Redis. Else, and always to the in-process StubBroker (dev mode, tests), at once."""
        if not isinstance(self.actor.broker, StubBroker) and _on_event_loop():
            return sender.submit(self)
        return send_now(self)


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class BackgroundSender:
    """One daemon thread per process that enqueues jobs handed to it, through Dramatiq's own `enqueue`.

    Jobs submitted while it is busy are coalesced: it wakes once, takes everything queued, and
    sends it back to back. Nothing here re-implements Dramatiq's protocol. A job it cannot send is
    logged by `send_now` and left to the outbox sweeper, as before; one still queued when the
    process dies is found by the sweeper too (Redis is disposable, the outbox row is the record).
    At exit, and when the API shuts down, `drain` gives the queue a few seconds to empty.

    A nudge (`coalesce`) says only "there is work": the sender gathers the nudges of the next
    COALESCE_SECONDS, then sends one of each; other jobs are sent as they come, meanwhile. Every stored
    callback nudges the drain: at 300 callbacks a second this sends 20 messages instead of 300, and
    each drain takes a batch of about 15."""

    MAX_PENDING = 10_000
    COALESCE_SECONDS = 0.05

    def __init__(self) -> None:
        self._jobs: SimpleQueue[PendingJob] = SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        self._pid: int | None = None
        self._start_lock = threading.Lock()

    def submit(self, job: PendingJob) -> bool:
        """Queue `job` for the thread; False (not sent: the sweeper will) when MAX_PENDING are already
        waiting, as they do while Redis hangs and every send waits out its socket timeout."""
        if self._pid != os.getpid():  # first use in this process (or in a fork of one that used it)
            self._start()
        with self._idle:
            if self._pending >= self.MAX_PENDING:
                log.warning(
                    "job sender backlog full; the sweeper will re-enqueue", extra={"actor": job.actor.actor_name}
                )
                return False
            self._pending += 1
        self._jobs.put(job)
        return True

    def _start(self) -> None:
        with self._start_lock:
            if self._pid == os.getpid():
                return
            self._jobs, self._pending = SimpleQueue(), 0  # a fork inherits the queue, not the thread
            threading.Thread(target=self._run, name="notifygw-job-sender", daemon=True).start()
            self._pid = os.getpid()

    def _run(self) -> None:
        while True:
            taken = [self._jobs.get()]
            self._take_waiting(taken)
            nudges: dict[tuple[str, tuple[Any, ...], uuid.UUID | None], PendingJob] = {}
            self._send_jobs(taken, nudges)
            handled = len(taken)
            if nudges:  # gather the rest of the burst; other jobs still go out as they come
                deadline = time.monotonic() + self.COALESCE_SECONDS
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        more = [self._jobs.get(timeout=left)]
                    except Empty:
                        break
                    self._take_waiting(more)
                    self._send_jobs(more, nudges)
                    handled += len(more)
                for job in nudges.values():
                    send_now(job)
            with self._idle:
                self._pending -= handled
                if self._pending <= 0:
                    self._idle.notify_all()

    @staticmethod
    def _send_jobs(jobs: list[PendingJob], nudges: dict[Any, PendingJob]) -> None:
        """Send every job now but the nudges, which are kept, one of each, for the end of the window."""
        for job in jobs:
            if job.coalesce:
                nudges.setdefault((job.actor.actor_name, job.args, job.tenant_id), job)
            else:
                send_now(job)  # never raises

    def _take_waiting(self, batch: list[PendingJob]) -> None:
        while True:
            try:
                batch.append(self._jobs.get_nowait())
            except Empty:
                return

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every submitted job has been handed to the broker (or failed); False on timeout."""
        if self._pid != os.getpid():
            return True
        with self._idle:
            return self._idle.wait_for(lambda: self._pending <= 0, timeout)


sender = BackgroundSender()
atexit.register(sender.drain)


def defer(
    session: AsyncSession,
    actor: Actor,
    *args: Any,
    delay_ms: int | None = None,
    tenant_id: uuid.UUID | None = None,
    coalesce: bool = False,
) -> None:
    """Buffer a job on the unit of work; it is sent after commit and dropped on rollback. `coalesce`
    marks a nudge (BackgroundSender)."""
    for arg in args:
        if not isinstance(arg, (str, int, float, bool, type(None))):
            raise TypeError(f"jobs carry ids only, got {type(arg).__name__}")
    unit_of(session).send_after_commit(PendingJob(actor.bound(), args, delay_ms, tenant_id, coalesce))


def nudge(actor: Actor) -> None:
    """A coalescing nudge (no arguments) for work already committed: outside any unit of work."""
    PendingJob(actor.bound(), (), None, None, coalesce=True).send()


def send_now(job: PendingJob) -> bool:
    """Enqueue one job. A broker outage is logged, not raised: the outbox row brings it back later."""
    try:
        message = job.actor.message_with_options(args=job.args)
        if job.tenant_id is not None:
            message = message.copy(queue_name=lane_of(job.actor.queue_name, job.tenant_id))
        job.actor.broker.enqueue(message, delay=job.delay_ms)
        return True
    except Exception as exc:  # redis.ConnectionError, TimeoutError, ...
        log.warning(
            "enqueue failed; the sweeper will re-enqueue",
            extra={"actor": job.actor.actor_name, "error": type(exc).__name__},
        )
        return False
