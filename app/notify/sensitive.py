"""Sensitive template variables (an OTP code): sealed at rest, dropped once the notification is final.

A template names its sensitive variables (`sensitive_variables`). When a notification is accepted,
their values go into `notifications.sealed_variables` as one AES-GCM token bound to the tenant, the
table and the column (as provider secrets are), and `notifications.variables` keeps PLACEHOLDER for
each, so no copy in clear is stored: not in the row, not in a job (jobs carry ids), not in a log line
(nothing logs variables), not in the Idempotency-Key's record (its request hash is keyed). The send
path unseals them in memory to build the message. The token is dropped when the notification is
final (delivered, read, failed, suppressed: `pipeline.set_status`), by the body retention and by
erasure, whichever comes first; a send after that (a late fallback) fails rather than go out without
the value. Key rotation re-seals the column with the provider secrets (its `encrypted` marker).

The ambiguous-timeout check (app/notify/ambiguity.py) never sees these values: it compares only a
session message's text, which the client gives as `text` and no template fills; a Content template
is rendered by Twilio and not compared.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from app.notify.models import Notification
from tenants.credentials.sealing import seal, unseal

PLACEHOLDER = "[sensitive]"
_TABLE, _COLUMN = "notifications", "sealed_variables"


class Dropped(Exception):
    """The sensitive values are gone (the notification was final): the send fails for good, never goes
    out with the placeholder."""


def split(
    tenant_id: uuid.UUID, variables: Mapping[str, str], names: frozenset[str]
) -> tuple[dict[str, str], str | None]:
    """(what `variables` stores, the sealed token of the sensitive values or None when there are none)."""
    secret = {k: v for k, v in variables.items() if k in names}
    if not secret:
        return dict(variables), None
    stored = {k: PLACEHOLDER if k in names else v for k, v in variables.items()}
    return stored, seal(tenant_id, _TABLE, _COLUMN, json.dumps(secret, separators=(",", ":")))


def for_send(n: Notification) -> dict[str, Any]:
    """The variables to build the message with, sensitive values unsealed (in memory only)."""
    if n.sealed_variables is None:
        if PLACEHOLDER in n.variables.values():
            raise Dropped("the sensitive variables were dropped when the notification was final; not sent without them")
        return dict(n.variables)
    values = json.loads(unseal(n.tenant_id, _TABLE, _COLUMN, n.sealed_variables))
    return {**n.variables, **values}


def drop(n: Notification) -> None:
    n.sealed_variables = None
