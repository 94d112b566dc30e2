"""Worker boot: shared by `notifygw worker` (via app.worker_entry) and the in-process dev worker."""

from __future__ import annotations

import asyncio
import threading

import dramatiq
from dramatiq.middleware import Middleware

from app import models  # noqa: F401  (every table and mapper, before the first query)
from app.actors import ACTORS
from app.core.config import get_settings
from app.core.logging import configure_logging, get_logger
from app.core.queue import declare, get_broker, setup_broker

log = get_logger("notifygw.worker")
MAINTENANCE_EVERY_SECONDS = 10.0


class Maintenance(Middleware):
    """Runs the sweeper and reconciler in each worker process, outside the queue: a repair job that
    lived in Redis would be lost exactly when it is needed (after a flush)."""

    def __init__(self, every: float = MAINTENANCE_EVERY_SECONDS) -> None:
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="notifygw-maintenance", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()

    def _run(self) -> None:
        from app.notify.maintenance import run_once

        async def loop() -> None:
            while not self._stop.is_set():
                try:
                    done = await run_once()
                    if any(done.values()):
                        log.info("maintenance", **done)
                except Exception:
                    log.exception("maintenance pass failed")
                await asyncio.sleep(self.every)

        asyncio.run(loop())


# Messages a worker process holds per queue before running them (Dramatiq's default: 2 x threads). A
# message waits behind everything already prefetched, so with tenant lanes a small prefetch is what
# lets a quiet tenant's job overtake a flooding tenant's backlog; 4 still keeps 8 threads busy.
QUEUE_PREFETCH = 4


def boot(*, maintenance: bool = True) -> dramatiq.Broker:
    import dramatiq.worker

    if not dramatiq.worker.QUEUE_PREFETCH:  # dramatiq_queue_prefetch in the environment wins
        dramatiq.worker.QUEUE_PREFETCH = QUEUE_PREFETCH
    settings = get_settings()
    configure_logging(settings.log_level)
    setup_broker(settings)
    broker = declare(ACTORS)
    if maintenance and not any(isinstance(m, Maintenance) for m in broker.middleware):
        broker.add_middleware(Maintenance())
    return broker


def start_in_process_worker(threads: int = 4) -> dramatiq.Worker:
    """The embedded default: same actors as production, on Dramatiq's in-process broker."""
    broker = boot()
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    return worker


def declared_queues() -> set[str]:
    return set(get_broker().get_declared_queues())
