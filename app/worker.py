"""Worker boot: shared by `notifygw worker` (via app.worker_entry) and the in-process dev worker."""

from __future__ import annotations

import dramatiq

from app.core.config import get_settings
from app.core.discovery import import_models, import_tasks
from app.core.logging import configure_logging
from app.core.queue import get_broker, setup_broker


def boot() -> dramatiq.Broker:
    settings = get_settings()
    configure_logging(settings.log_level)
    broker = setup_broker(settings)
    import_models()
    import_tasks()
    return broker


def start_in_process_worker(threads: int = 4) -> dramatiq.Worker:
    """The embedded default: same actors as production, on Dramatiq's in-process broker."""
    broker = boot()
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    return worker


def declared_queues() -> set[str]:
    return set(get_broker().get_declared_queues())

