from __future__ import annotations

from typing import Any

import pytest

from app.endpoints import urls


@pytest.fixture
def sink(callback_sink: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The callback sink as a tenant app's webhook receiver: trusted by the SSRF guard for this test only."""
    monkeypatch.setattr(urls, "EXTRA_TRUSTED_HOSTS", {callback_sink.base_url.removeprefix("http://")})
    return callback_sink
