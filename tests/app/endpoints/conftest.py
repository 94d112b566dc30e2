from __future__ import annotations

from typing import Any

import dramatiq
import pytest

from app.endpoints import delivery, urls

# Retries wait 5 s to 10 h in production; the logic under test is the same at 50 ms.
FAST_SCHEDULE = (0.05,) * 6


@pytest.fixture
def delivery_worker(worker: dramatiq.Worker) -> dramatiq.Worker:
    """The session's Dramatiq worker on Redis (it consumes the delivery queue too)."""
    return worker


@pytest.fixture
def sink(callback_sink: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The callback sink as a tenant app: trusted by the SSRF guard (it listens on 127.0.0.1) for this test only."""
    monkeypatch.setattr(urls, "EXTRA_TRUSTED_HOSTS", {callback_sink.base_url.removeprefix("http://")})
    return callback_sink


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> tuple[float, ...]:
    monkeypatch.setattr(delivery, "RETRY_SCHEDULE_SECONDS", FAST_SCHEDULE)
    return FAST_SCHEDULE
