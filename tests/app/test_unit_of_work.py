"""The unit of work (app/core/uow.py): jobs after commit, decisions at commit, invalidations after
commit, all dropped on rollback; a rolled-back savepoint drops only what was queued inside it."""

from __future__ import annotations

import uuid

import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import get_engine, session_factory
from app.core.queue import Actor, NotDeclared, defer
from app.core.ttlcache import TTLCache
from app.core.uow import UnitOfWorkSession, unit_of
from app.notify import pipeline
from app.notify.models import Decision, Notification
from tenants.accounts.models import Tenant
from tenants.contacts.models import Contact

QUEUE = "uow_test"


async def _never(_session: AsyncSession, _id: str) -> None:
    raise AssertionError("only enqueued, never run")


@pytest.fixture
def stub() -> StubBroker:
    """An actor bound to a broker of its own, so what was enqueued can be counted exactly."""
    broker = StubBroker()
    _ACTOR.bind(broker)
    return broker


_ACTOR = Actor("tests.uow", _never, queue=QUEUE)


def sent(broker: StubBroker) -> int:
    return broker.queues[QUEUE].qsize()


async def tenant_and_notification(session: AsyncSession) -> tuple[Tenant, Notification]:
    tenant = Tenant(name="uow", slug=f"uow-{uuid.uuid4().hex[:8]}", status="active")
    session.add(tenant)
    await session.flush()
    contact = Contact(tenant_id=tenant.id)
    session.add(contact)
    await session.flush()
    n = Notification(
        tenant_id=tenant.id,
        contact_id=contact.id,
        recipient={},
        variables={},
        channels=["whatsapp"],
        metadata_={},
    )
    session.add(n)
    await session.commit()
    return tenant, n


async def decisions_of(n: Notification) -> list[tuple[str, str]]:
    async with session_factory()() as s:
        rows = await s.execute(
            select(Decision.step, Decision.result).where(Decision.notification_id == n.id).order_by(Decision.created_at)
        )
        return [tuple(r) for r in rows.all()]


async def test_every_session_of_the_factory_has_a_unit_of_work():
    async with session_factory()() as s:
        assert isinstance(s, UnitOfWorkSession) and unit_of(s) is s.unit
    with pytest.raises(TypeError, match="no unit of work"):
        unit_of(AsyncSession(get_engine()))


async def test_jobs_are_sent_only_after_commit(stub):
    async with session_factory()() as s:
        defer(s, _ACTOR, "a")
        defer(s, _ACTOR, "b")
        await s.flush()
        assert sent(stub) == 0  # nothing leaves before the transaction is durable
        await s.commit()
        assert sent(stub) == 2
        assert unit_of(s).jobs == []
        await s.commit()  # a second commit of the same session does not send them again
        assert sent(stub) == 2


async def test_jobs_are_dropped_on_rollback_and_on_close(stub):
    async with session_factory()() as s:
        defer(s, _ACTOR, "a")
        await s.rollback()
        await s.commit()
    assert sent(stub) == 0
    async with session_factory()() as s:
        defer(s, _ACTOR, "b")  # closed without a commit
    assert sent(stub) == 0 and unit_of(s).jobs == []


async def test_a_failed_commit_sends_nothing(stub):
    async with session_factory()() as s:
        first, _ = await tenant_and_notification(s)
        defer(s, _ACTOR, "a")
        s.add(Tenant(name="dup", slug=first.slug, status="active"))
        with pytest.raises(IntegrityError):
            await s.commit()
        await s.rollback()
        assert unit_of(s).jobs == []
    assert sent(stub) == 0


async def test_a_job_for_an_undeclared_actor_is_refused_at_defer():
    orphan = Actor("tests.undeclared", _never, queue=QUEUE)
    async with session_factory()() as s:
        with pytest.raises(NotDeclared, match=r"app/actors\.py"):
            defer(s, orphan, "a")


async def test_jobs_carry_ids_only(stub):
    async with session_factory()() as s:
        with pytest.raises(TypeError, match="ids only"):
            defer(s, _ACTOR, {"body": "secret"})


async def test_decisions_are_written_at_commit_in_order():
    async with session_factory()() as s:
        _, n = await tenant_and_notification(s)
        for step in ("suppression", "credentials", "consent", "window", "whatsapp"):
            pipeline.decide(s, n, step, "ok")
        assert len(unit_of(s).rows) == 5 and not s.new  # held by the unit of work, not the session
        await s.commit()
        assert unit_of(s).rows == []
    assert await decisions_of(n) == [
        (step, "ok") for step in ("suppression", "credentials", "consent", "window", "whatsapp")
    ]


async def test_decisions_are_dropped_on_rollback():
    async with session_factory()() as s:
        _, n = await tenant_and_notification(s)
        pipeline.decide(s, n, "consent", "denied")
        await s.rollback()
        await s.commit()
    assert await decisions_of(n) == []


async def test_a_rolled_back_savepoint_keeps_what_was_queued_before_it(stub):
    async with session_factory()() as s:
        _, n = await tenant_and_notification(s)
        pipeline.decide(s, n, "before", "kept")
        defer(s, _ACTOR, "before")
        with pytest.raises(RuntimeError):
            async with s.begin_nested():
                pipeline.decide(s, n, "inside", "dropped")
                defer(s, _ACTOR, "inside")
                raise RuntimeError("the savepoint rolls back")
        savepoint = await s.begin_nested()
        pipeline.decide(s, n, "explicit", "dropped")
        await savepoint.rollback()
        async with s.begin_nested():  # released: what it queued stays
            pipeline.decide(s, n, "released", "kept")
        pipeline.decide(s, n, "after", "kept")
        await s.commit()
    assert await decisions_of(n) == [("before", "kept"), ("released", "kept"), ("after", "kept")]
    assert sent(stub) == 1


async def test_a_savepoint_whose_flush_fails_drops_what_it_queued(stub):
    async with session_factory()() as s:
        first, n = await tenant_and_notification(s)
        pipeline.decide(s, n, "before", "kept")
        with pytest.raises(IntegrityError):
            async with s.begin_nested():  # the shape of pipeline.fall_back_to_email's exactly-once insert
                defer(s, _ACTOR, "inside")
                s.add(Tenant(name="dup", slug=first.slug, status="active"))
                await s.flush()
        await s.commit()
    assert await decisions_of(n) == [("before", "kept")]
    assert sent(stub) == 0


async def test_invalidations_are_applied_after_commit_only():
    cache: TTLCache[str] = TTLCache()
    cache.put("k", "old")
    async with session_factory()() as s:
        cache.invalidate_on_commit(s, "k")
        assert cache.get("k") is None  # at once, too
        cache.put("k", "stale")  # a reader between the change and its commit caches the old value
        await s.flush()
        assert cache.get("k") == "stale"
        await s.commit()
        assert cache.get("k") is None  # the commit clears it again

    cache.put("k", "current")
    async with session_factory()() as s:
        cache.invalidate_on_commit(s, "k")
        cache.put("k", "current")
        await s.rollback()  # nothing changed: nothing more to clear
        await s.commit()
    assert cache.get("k") == "current"


async def test_sessions_do_not_share_a_unit_of_work(stub):
    async with session_factory()() as one, session_factory()() as two:
        defer(one, _ACTOR, "one")
        await two.commit()
        assert sent(stub) == 0
        await one.commit()
    assert sent(stub) == 1


async def test_jobs_for_redis_are_sent_after_commit_off_the_event_loop(monkeypatch):
    """Dramatiq's Redis broker is synchronous: a commit on an event loop hands its jobs to the background
    sender, and the loop's thread never calls the broker. The jobs still reach the broker, in order."""
    import os
    import threading

    from dramatiq.brokers.redis import RedisBroker

    from app.core.queue import sender

    broker = RedisBroker(url=os.environ["NOTIFYGW_REDIS_URL"], namespace=f"uow-{uuid.uuid4().hex[:8]}")
    actor = Actor("tests.uow.redis", _never, queue=QUEUE)
    actor.bind(broker)
    seen: list[tuple[str, str]] = []

    def enqueue(message, *, delay=None):
        seen.append((threading.current_thread().name, message.args[0]))
        return message

    monkeypatch.setattr(broker, "enqueue", enqueue)
    async with session_factory()() as s:
        defer(s, actor, "a")
        defer(s, actor, "b")
        await s.commit()
    assert sender.drain(5.0)
    assert [arg for _, arg in seen] == ["a", "b"]
    assert threading.current_thread().name not in {name for name, _ in seen}


async def test_the_background_sender_survives_a_broker_that_is_down(monkeypatch):
    """A job it cannot send is logged and left to the outbox sweeper; the next one still goes."""
    import os

    from dramatiq.brokers.redis import RedisBroker

    from app.core.queue import sender

    broker = RedisBroker(url=os.environ["NOTIFYGW_REDIS_URL"], namespace=f"uow-{uuid.uuid4().hex[:8]}")
    actor = Actor("tests.uow.down", _never, queue=QUEUE)
    actor.bind(broker)
    seen: list[str] = []

    def enqueue(message, *, delay=None):
        if message.args[0] == "lost":
            raise ConnectionError("redis is down")
        seen.append(message.args[0])
        return message

    monkeypatch.setattr(broker, "enqueue", enqueue)
    for arg in ("lost", "kept"):
        async with session_factory()() as s:
            defer(s, actor, arg)
            await s.commit()
    assert sender.drain(5.0)
    assert seen == ["kept"]


async def test_the_background_sender_holds_a_bounded_backlog(monkeypatch):
    """While Redis hangs every send waits out its socket timeout: past MAX_PENDING waiting jobs, a new one
    is not queued (the outbox sweeper sends it later) instead of growing the process without bound."""
    import os
    import threading

    from dramatiq.brokers.redis import RedisBroker

    from app.core.queue import PendingJob, sender

    broker = RedisBroker(url=os.environ["NOTIFYGW_REDIS_URL"], namespace=f"uow-{uuid.uuid4().hex[:8]}")
    actor = Actor("tests.uow.hung", _never, queue=QUEUE)
    actor.bind(broker)
    hung = threading.Event()
    monkeypatch.setattr(broker, "enqueue", lambda message, *, delay=None: hung.wait(10))
    monkeypatch.setattr(type(sender), "MAX_PENDING", 3)
    jobs = [PendingJob(actor.bound(), (str(i),), None) for i in range(5)]
    try:
        assert [sender.submit(j) for j in jobs] == [True, True, True, False, False]
    finally:
        hung.set()
    assert sender.drain(5.0)
    assert sender.submit(jobs[0]) and sender.drain(5.0)  # room again once Redis answers


async def test_identical_nudges_are_sent_once_and_other_jobs_do_not_wait_for_them(monkeypatch):
    """A nudge only says "there is work" (the webhook drain's): the sender keeps one of each for the
    coalescing window, and a job that is not a nudge, submitted meanwhile, is sent at once."""
    import os

    from dramatiq.brokers.redis import RedisBroker

    from app.core.queue import PendingJob, sender

    broker = RedisBroker(url=os.environ["NOTIFYGW_REDIS_URL"], namespace=f"uow-{uuid.uuid4().hex[:8]}")
    nudge, job = Actor("tests.uow.nudge", _never, queue=QUEUE), Actor("tests.uow.job", _never, queue=QUEUE)
    nudge.bind(broker)
    job.bind(broker)
    seen: list[str] = []
    monkeypatch.setattr(broker, "enqueue", lambda message, *, delay=None: seen.append(message.actor_name))
    monkeypatch.setattr(type(sender), "COALESCE_SECONDS", 0.5)  # wide: the order below cannot race it
    for _ in range(10):
        assert sender.submit(PendingJob(nudge.bound(), (), None, coalesce=True))
    assert sender.submit(PendingJob(job.bound(), ("a",), None))
    assert sender.submit(PendingJob(job.bound(), ("b",), None))
    assert sender.drain(5.0)
    assert seen == ["tests.uow.job", "tests.uow.job", "tests.uow.nudge"]
