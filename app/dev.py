"""What `notifygw dev` prepares and prints for a newcomer."""

from __future__ import annotations

from app.core.config import Settings


def bootstrap(settings: Settings) -> str:
    base = settings.public_base_url
    return "\n".join([
        "",
        f"notifygw dev is running at {base}",
        f"  database: {settings.database_url}",
        "  queue:    in-process (Dramatiq StubBroker)",
        "",
        "Try:",
        f"  curl -s {base}/healthz",
        f"  curl -s {base}/readyz",
        f"  open {base}/schema for the API reference",
        "",
    ])
