"""GET /metrics (operator token): process counters plus queue depth and outbox lag read at scrape time."""

from __future__ import annotations

import asyncio
import os

from dramatiq.brokers.redis import RedisBroker
from litestar import Response, get
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Gauge, generate_latest

from app.core.deps import DbSession
from app.core.queue import base_queue, get_broker
from app.outbox.service import dead_stats, pending_stats
from tenants.auth import Caller, require_operator


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated in prometheus_client
        return registry
    return REGISTRY


async def _queue_depths() -> dict[str, int]:
    broker = get_broker()
    if not isinstance(broker, RedisBroker):  # the in-process StubBroker: no queue to measure
        return {}
    client = broker.client
    queues = sorted(broker.get_declared_queues())

    def read() -> dict[str, int]:
        depths: dict[str, int] = {}
        for q in queues:  # tenant lanes are summed into their queue: the label stays a handful of names
            depths[base_queue(q)] = depths.get(base_queue(q), 0) + int(client.hlen(f"{broker.namespace}:{q}.msgs"))
        return depths

    try:
        return await asyncio.wait_for(asyncio.to_thread(read), timeout=2)
    except Exception:
        return {}


@get(
    "/metrics",
    tags=["operations"],
    security=[{"OperatorToken": []}],
    dependencies={"principal": require_operator()},
    summary="Prometheus metrics",
    media_type=CONTENT_TYPE_LATEST,
)
async def metrics(principal: Caller, db_session: DbSession) -> Response[bytes]:
    scrape = CollectorRegistry()
    depth = Gauge("notifygw_queue_depth", "Jobs queued or running, per queue", ["queue"], registry=scrape)
    for queue, count in (await _queue_depths()).items():
        depth.labels(queue).set(count)
    pending, oldest = await pending_stats(db_session)
    Gauge("notifygw_outbox_pending", "Outbox items not yet done", registry=scrape).set(pending)
    Gauge("notifygw_outbox_oldest_seconds", "Age of the oldest pending outbox item (outbox lag)", registry=scrape).set(
        oldest
    )
    dead = Gauge(
        "notifygw_outbox_dead",
        "Outbox jobs in the dead state (used up their tries), per kind",
        ["kind"],
        registry=scrape,
    )
    for kind, count in (await dead_stats(db_session)).items():
        dead.labels(kind).set(count)
    body = generate_latest(_registry()) + generate_latest(scrape)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


ROUTES = [metrics]
