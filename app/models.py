"""Every models module, imported here so that `Base.metadata` and the mappers are complete.

Alembic (migrations/env.py), the API, the worker, the CLI and the tests import this module; a new
models module is added to MODELS (tests/meta/test_registries.py fails until it is).
"""

from __future__ import annotations

from app.notify import models as notify
from app.outbox import models as outbox
from app.webhooks import models as webhooks
from tenants.accounts import models as accounts
from tenants.api_keys import models as api_keys
from tenants.audit import models as audit
from tenants.contacts import models as contacts
from tenants.credentials import models as credentials
from tenants.routing import models as routing
from tenants.templates import models as templates

MODELS = (
    accounts,
    api_keys,
    audit,
    contacts,
    credentials,
    routing,
    templates,
    notify,
    outbox,
    webhooks,  # also the tables of app/endpoints (webhook endpoints and deliveries)
)
