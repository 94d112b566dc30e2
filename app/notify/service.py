"""Accepting a notification: validate, resolve the contact, persist with its outbox item. Nothing else.

The request path does auth, rate limit, validation and one transaction; every provider call
happens later in a worker.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import table_of, utcnow
from app.core.errors import ValidationFailed
from app.notify import sensitive
from app.notify.kinds import ROUTE
from app.notify.models import Notification
from app.notify.schemas import NotificationIn
from app.outbox import service as outbox
from tenants.auth import Principal
from tenants.contacts import service as contacts
from tenants.contacts.lookup import from_fields
from tenants.routing.service import get_policy
from tenants.templates import service as templates
from tenants.templates.rendering import required_variables, resolve_locale

MAX_METADATA_BYTES = 4096


def _check_shape(data: NotificationIn) -> None:
    if data.to.phone is None and data.to.email is None and data.to.whatsapp_user_id is None:
        raise ValidationFailed("give at least one of to.phone, to.whatsapp_user_id, to.email", pointer="/to")
    if data.template is None and data.text is None:
        raise ValidationFailed("give a template or text", pointer="/template")
    if len(set(data.channels)) != len(data.channels):
        raise ValidationFailed("channels must not repeat", pointer="/channels")
    if len(msgspec.json.encode(data.metadata)) > MAX_METADATA_BYTES:
        raise ValidationFailed(f"metadata is limited to {MAX_METADATA_BYTES} bytes of JSON", pointer="/metadata")
    if data.media_url is not None and not data.media_url.lower().startswith(("https://", "http://")):
        raise ValidationFailed("media_url must be an https URL", pointer="/media_url")


async def accept(
    session: AsyncSession,
    principal: Principal,
    data: NotificationIn,
    *,
    notification_id: uuid.UUID | None = None,
    created_at: datetime | None = None,
) -> uuid.UUID:
    """Validate, resolve the contact, and write the notification with its outbox row; its id.

    `notification_id` and `created_at` may be chosen by the caller, which has already answered with
    them (the Idempotency-Key record holds the response)."""
    _check_shape(data)
    tenant_id = principal.tenant
    policy = await get_policy(session, tenant_id)
    idents = from_fields(
        phone=data.to.phone,
        whatsapp_user_id=data.to.whatsapp_user_id,
        email=data.to.email,
        default_region=policy.default_country,
        prefix="/to",
    )

    sensitive_names: frozenset[str] = frozenset()
    if data.template is not None:
        template = await templates.content(session, tenant_id, data.template)
        if template is None:
            raise ValidationFailed(f"no template '{data.template}'", pointer="/template")
        locale = resolve_locale(template.locales, template.default_locale, data.to.locale)
        missing = [v for v in required_variables(template.locales[locale]) if v not in data.variables]
        if missing:
            raise ValidationFailed(
                f"missing template variables: {', '.join(missing)}",
                errors=[{"pointer": f"/variables/{name}", "detail": "required by the template"} for name in missing],
            )
        sensitive_names = template.sensitive

    contact_id = await contacts.resolve_id(session, tenant_id, idents, within_quota=True)
    recipient: dict[str, Any] = {i.kind if i.kind != "bsuid" else "whatsapp_user_id": i.value for i in idents}
    if data.to.locale:
        recipient["locale"] = data.to.locale
    nid = notification_id or uuid.uuid4()
    now = created_at or utcnow()
    # A sensitive variable's value is sealed: never stored in clear (app/notify/sensitive.py).
    variables, sealed = sensitive.split(tenant_id, {k: str(v) for k, v in data.variables.items()}, sensitive_names)
    # A Core row, every column given, written with its outbox row in one statement on PostgreSQL:
    # nothing on the request path reads the notification back, so the ORM's flush has nothing to do.
    row = {
        "id": nid,
        "tenant_id": tenant_id,
        "contact_id": contact_id,
        "recipient": recipient,
        "template_key": data.template,
        "variables": variables,
        "sealed_variables": sealed,
        "text": data.text,
        "media_url": data.media_url,
        "channels": list(data.channels),
        "metadata": data.metadata,
        "environment": principal.environment,
        "purpose": "client",
        "status": "accepted",
        "channel": None,
        "created_at": now,
        "updated_at": now,
        "redacted_at": None,
    }
    await outbox.enqueue_new(session, tenant_id, ROUTE, nid, along=(_NOTIFICATIONS, row))
    return nid


_NOTIFICATIONS = table_of(Notification)
