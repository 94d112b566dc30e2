"""Every route handler the app serves, in one list: ROUTES (given to Litestar by app/asgi.py).

Each controllers module lists its own handlers in its ROUTES, beside them; this list names those
modules. A new controllers module is added here (tests/meta/test_registries.py fails until it is).
The emulator is mounted apart, and only when NOTIFYGW_MOUNT_EMULATOR is on (app/asgi.py).
"""

from __future__ import annotations

from typing import Any

from app.console import controllers as console
from app.endpoints import controllers as endpoints
from app.health import controllers as health
from app.messages import controllers as messages
from app.metrics import controllers as metrics
from app.notify import controllers as notify
from app.outbox import controllers as outbox
from app.usage import controllers as usage
from app.webhooks import controllers as webhooks
from app.webhooks import replay_controllers as webhooks_replay
from tenants.accounts import controllers as accounts
from tenants.api_keys import controllers as api_keys
from tenants.audit import controllers as audit
from tenants.contacts import controllers as contacts
from tenants.credentials import controllers as credentials
from tenants.people import controllers as people
from tenants.routing import controllers as routing
from tenants.templates import controllers as templates

# In module order, as the OpenAPI document has always listed them.
ROUTES: list[Any] = [
    *endpoints.ROUTES,  # /v1/webhook-endpoints
    *health.ROUTES,  # /healthz, /readyz
    *metrics.ROUTES,  # /metrics
    *notify.ROUTES,  # /v1/notifications
    *messages.ROUTES,  # /v1/messages (inbound)
    *usage.ROUTES,  # /v1/usage
    *outbox.ROUTES,  # /operator/v1/dead-letters
    *webhooks.ROUTES,  # provider callbacks under /webhooks
    *webhooks_replay.ROUTES,  # /operator/v1/replays
    *accounts.ROUTES,  # /operator/v1/tenants, /v1/settings/retention
    *api_keys.ROUTES,  # /v1/api-keys
    *audit.ROUTES,  # the audit log
    *contacts.ROUTES,  # /v1/consents, /v1/suppressions
    *credentials.ROUTES,  # /v1/providers
    *people.ROUTES,  # /v1/contacts
    *routing.ROUTES,  # /v1/routing
    *templates.ROUTES,  # /v1/templates
    *console.ROUTES,  # /console (not in the OpenAPI document)
]
