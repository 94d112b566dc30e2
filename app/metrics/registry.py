"""Prometheus metrics. Labels carry ids and fixed vocabularies only, never names or free text.

Each process counts its own events. Run API and worker processes with PROMETHEUS_MULTIPROC_DIR
set to a shared, empty directory (prometheus-client's multiprocess mode) and GET /metrics on any
API process reports the sum over every process on the host.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

NOTIFICATIONS = Counter("notifygw_notifications_total", "Notifications that reached a final outcome",
                        ["tenant", "channel", "outcome"])
FALLBACKS = Counter("notifygw_fallbacks_total", "Email fallbacks, by the reason WhatsApp could not be used", ["reason"])
PROVIDER_CALLS = Histogram("notifygw_provider_call_seconds", "Provider API call latency", ["provider", "operation"],
                           buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
PROVIDER_ERRORS = Counter("notifygw_provider_errors_total", "Provider failures by class", ["provider", "failure"])
WEBHOOK_LATENCY = Histogram("notifygw_webhook_handler_seconds", "Time to validate, store and answer a provider callback",
                            ["kind"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
RATE_LIMIT_WAITS = Counter("notifygw_rate_limit_waits_total", "Sends rescheduled for want of a pacing token", ["scope"])
