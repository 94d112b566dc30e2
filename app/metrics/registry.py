"""Prometheus metrics. Labels carry ids and fixed vocabularies only, never names or free text.

The ones tenants/ counts too are defined in the kernel, app/core/metrics.py.

Each process counts its own events. Run API and worker processes with PROMETHEUS_MULTIPROC_DIR
set to a shared, empty directory (prometheus-client's multiprocess mode) and GET /metrics on any
API process reports the sum over every process on the host.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Defined in the kernel so that tenants/ can count too; named here as well for the app's own callers.
from app.core.metrics import RATE_LIMIT_WAITS as RATE_LIMIT_WAITS

NOTIFICATIONS = Counter(
    "notifygw_notifications_total", "Notifications that reached a final outcome", ["tenant", "channel", "outcome"]
)
FALLBACKS = Counter("notifygw_fallbacks_total", "Email fallbacks, by the reason WhatsApp could not be used", ["reason"])
PROVIDER_CALLS = Histogram(
    "notifygw_provider_call_seconds",
    "Provider API call latency",
    ["provider", "operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PROVIDER_ERRORS = Counter("notifygw_provider_errors_total", "Provider failures by class", ["provider", "failure"])
WEBHOOK_LATENCY = Histogram(
    "notifygw_webhook_handler_seconds",
    "Time to validate, store and answer a provider callback",
    ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
DEAD_LETTERS = Counter(
    "notifygw_dead_letters_total", "Jobs that used up their tries and stopped in the dead state", ["kind"]
)
RETENTION_ROWS = Counter(
    "notifygw_retention_rows_total",
    "Rows the retention job redacted or deleted, by step (redacted.notifications, deleted.raw_events, ...)",
    ["step"],
)
WHATSAPP_63018 = Counter(
    "notifygw_whatsapp_63018_total",
    "Twilio 63018 on a WhatsApp template, by what it was taken for: a burst over the MPS, or the messaging-limit tier",
    ["tenant", "cause"],
)
WHATSAPP_SENDERS_CAPPED = Counter(
    "notifygw_whatsapp_senders_capped_total",
    "Times a WhatsApp sender's assumed messaging-limit tier was lowered after a 63018 (the alert)",
    ["tenant"],
)
