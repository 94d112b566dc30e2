"""Tenant webhook endpoints: URLs vetted by the SSRF guard, secrets sealed at rest and shown once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utcnow
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.pagination import page_of, paginate
from app.endpoints import urls
from app.endpoints.events import DELIVER, endpoints_changed
from app.endpoints.repository import DeliveryAttemptRepository, DeliveryRepository, EndpointRepository
from app.endpoints.schemas import DeliveryAttemptOut, DeliveryOut, EndpointCreated, EndpointOut
from app.outbox import service as outbox
from app.webhooks.models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint
from channels.signatures import generate_webhook_secret
from tenants.accounts import quotas
from tenants.audit import service as audit
from tenants.audit.service import mask
from tenants.credentials.sealing import seal, unseal

TABLE = WebhookEndpoint.__tablename__
COLUMN = "secret_enc"


def secret_of(row: WebhookEndpoint) -> str:
    """Decrypt in memory only; never log or return the result (except to sign a delivery)."""
    return unseal(row.tenant_id, TABLE, COLUMN, row.secret_enc)


def _seal_new_secret(row: WebhookEndpoint) -> str:
    secret = generate_webhook_secret()
    row.secret_enc = seal(row.tenant_id, TABLE, COLUMN, secret)
    return secret


def snapshot(row: WebhookEndpoint, secret: str | None = None) -> dict[str, Any]:
    return {
        "url": row.url,
        "events": list(row.events),
        "status": row.status,
        "secret": mask(secret if secret is not None else secret_of(row)),
        "failing_since": row.failing_since.isoformat() if row.failing_since else None,
    }


def render(row: WebhookEndpoint) -> EndpointOut:
    return EndpointOut(
        id=row.id,
        url=row.url,
        events=list(row.events),
        status=row.status,
        secret=mask(secret_of(row)),
        failing_since=row.failing_since,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _created(row: WebhookEndpoint, secret: str) -> EndpointCreated:
    return EndpointCreated(
        id=row.id,
        url=row.url,
        events=list(row.events),
        status=row.status,
        secret=secret,
        failing_since=row.failing_since,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _vetted(url: str) -> str:
    try:
        await urls.vet(url)
    except urls.RefusedUrl as exc:
        raise ValidationFailed(f"this URL is refused: {exc}", pointer="/url") from None
    return url


def _events(events: Sequence[str]) -> list[str]:
    return sorted(set(events))


async def create(
    session: AsyncSession, tenant_id: uuid.UUID, *, url: str, events: Sequence[str], actor: Any
) -> EndpointCreated:
    # Every endpoint multiplies each event into one more delivery (and its retries): bounded per tenant.
    await quotas.check_room(session, tenant_id, "webhook_endpoints", WebhookEndpoint)
    row = EndpointRepository(session, tenant_id).add(
        WebhookEndpoint(url=await _vetted(url), events=_events(events), status="enabled")
    )
    secret = _seal_new_secret(row)
    await session.flush()
    endpoints_changed(session, tenant_id)
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="webhook_endpoint.created",
        target_type="webhook_endpoint",
        target_id=row.id,
        after=snapshot(row, secret),
    )
    return _created(row, secret)


async def get(session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    return await EndpointRepository(session, tenant_id).get(endpoint_id, what="webhook endpoint")


async def update(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    url: str | None,
    events: Sequence[str] | None,
    status: str | None,
    actor: Any,
) -> WebhookEndpoint:
    row = await get(session, tenant_id, endpoint_id)
    before = snapshot(row)
    if url is not None and url != row.url:
        row.url = await _vetted(url)
    if events is not None:
        row.events = _events(events)
    if status is not None and status != row.status:
        row.status = status
        if status == "enabled":
            row.failing_since = None  # a fresh start: 3 more days before it can be disabled again
    after = snapshot(row)
    if after != before:
        await session.flush()
        endpoints_changed(session, tenant_id)
        audit.record(
            session,
            tenant_id=tenant_id,
            actor=actor,
            action="webhook_endpoint.updated",
            target_type="webhook_endpoint",
            target_id=row.id,
            before=before,
            after=after,
        )
    return row


async def rotate_secret(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, *, actor: Any
) -> EndpointCreated:
    """A new secret signs every attempt from now on, retries of older deliveries included."""
    row = await get(session, tenant_id, endpoint_id)
    before = snapshot(row)
    secret = _seal_new_secret(row)
    await session.flush()
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="webhook_endpoint.secret_rotated",
        target_type="webhook_endpoint",
        target_id=row.id,
        before=before,
        after=snapshot(row, secret),
    )
    return _created(row, secret)


async def delete(session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, *, actor: Any) -> None:
    """Deliveries and attempts go with it (FK cascade); their pending jobs find nothing and finish."""
    row = await get(session, tenant_id, endpoint_id)
    before = snapshot(row)
    await session.delete(row)
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="webhook_endpoint.deleted",
        target_type="webhook_endpoint",
        target_id=row.id,
        before=before,
    )


# --- deliveries -----------------------------------------------------------------------------------


async def render_deliveries(
    session: AsyncSession, tenant_id: uuid.UUID, deliveries: Sequence[WebhookDelivery]
) -> list[DeliveryOut]:
    """Each delivery with its attempts, oldest attempt first: one query for all their attempts."""
    attempts: dict[uuid.UUID, list[DeliveryAttemptOut]] = {d.id: [] for d in deliveries}
    if deliveries:
        repo = DeliveryAttemptRepository(session, tenant_id)
        rows = await repo.all(
            repo.statement()
            .where(WebhookDeliveryAttempt.delivery_id.in_(list(attempts)))
            .order_by(WebhookDeliveryAttempt.created_at, WebhookDeliveryAttempt.id)
        )
        for a in rows:
            attempts[a.delivery_id].append(
                DeliveryAttemptOut(
                    id=a.id,
                    response_status=a.response_status,
                    error=a.error,
                    duration_ms=a.duration_ms,
                    created_at=a.created_at,
                )
            )
    return [
        DeliveryOut(
            id=d.id,
            endpoint_id=d.endpoint_id,
            event_type=d.event_type,
            status=d.status,
            attempt_count=d.attempt_count,
            next_attempt_at=d.next_attempt_at,
            payload=d.payload,
            attempts=attempts[d.id],
            created_at=d.created_at,
            updated_at=d.updated_at,
        )
        for d in deliveries
    ]


def _deliveries_of(session: AsyncSession, tenant_id: uuid.UUID, endpoint: WebhookEndpoint) -> Select[WebhookDelivery]:
    return DeliveryRepository(session, tenant_id).statement().where(WebhookDelivery.endpoint_id == endpoint.id)


async def list_deliveries(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, *, cursor: str | None, limit: int
) -> dict[str, Any]:
    """A page of an endpoint's deliveries, newest first, each with its attempts."""
    endpoint = await get(session, tenant_id, endpoint_id)
    stmt = paginate(_deliveries_of(session, tenant_id, endpoint), WebhookDelivery, cursor, limit)
    page = page_of((await session.execute(stmt)).scalars().all(), limit, lambda d: d)
    return {"items": await render_deliveries(session, tenant_id, page["items"]), "next_cursor": page["next_cursor"]}


async def resend(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, delivery_id: uuid.UUID, *, actor: Any
) -> WebhookDelivery:
    """Attempt a delivery again now, whatever its state. Its retry schedule continues where it stood,
    so resending a delivery whose retries are spent gives it exactly one more attempt."""
    endpoint = await get(session, tenant_id, endpoint_id)
    stmt = _deliveries_of(session, tenant_id, endpoint).where(WebhookDelivery.id == delivery_id)
    delivery = (await session.scalars(stmt)).one_or_none()
    if delivery is None:
        raise NotFound("webhook delivery not found")
    if endpoint.status != "enabled":
        raise Conflict("this endpoint is disabled: enable it (PATCH status) before resending")
    if delivery.redacted_at is not None:
        raise Conflict("this delivery's payload was redacted by the tenant's retention: there is nothing to resend")
    before = {"status": delivery.status, "attempt_count": delivery.attempt_count}
    delivery.status, delivery.next_attempt_at = "pending", utcnow()
    await outbox.enqueue(session, tenant_id, DELIVER, delivery.id)
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="webhook_delivery.resent",
        target_type="webhook_delivery",
        target_id=delivery.id,
        before=before,
        after={"status": "pending", "endpoint_id": str(endpoint.id)},
    )
    return delivery
