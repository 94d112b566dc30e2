"""Prometheus metrics that the kernel's users count, tenants/ among them; the rest are in app/metrics/registry.py.

tenants/ imports nothing of app/ but app.core (the layer rule in pyproject.toml), and the API rate
limit in tenants/auth.py counts its waits here. Labels carry fixed vocabularies only.
"""

from __future__ import annotations

from prometheus_client import Counter

# scope: tenant_api (tenants/auth.py) or whatsapp_sender (app/notify/sending.py).
RATE_LIMIT_WAITS = Counter("notifygw_rate_limit_waits_total", "Sends rescheduled for want of a pacing token", ["scope"])
