"""Client API: notify a person, and read back what happened and why."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import HeaderParameter, Parameter

from app.core.db import utcnow
from app.core.deps import DbSession
from app.core.pagination import page_of, paginate
from app.notify import idempotency, service
from app.notify.models import Attempt, Notification
from app.notify.repository import (
    EnvironmentNotificationRepository,
    story,
)
from app.notify.schemas import (
    AttemptOut,
    DecisionOut,
    NotificationAccepted,
    NotificationIn,
    NotificationOut,
    NotificationPage,
    NotificationSummary,
    ProviderEventOut,
)
from tenants.auth import Caller, require_scope
from tenants.contacts import identifiers
from tenants.contacts import service as contacts
from tenants.contacts.identifiers import IdentifierError
from tenants.routing.service import get_policy


def _summary(n: Notification) -> NotificationSummary:
    return NotificationSummary(
        id=n.id, status=n.status, channel=n.channel, to=n.recipient, template=n.template_key, created_at=n.created_at
    )


def _attempt(a: Attempt) -> AttemptOut:
    return AttemptOut(
        id=a.id,
        channel=a.channel,
        kind=a.kind,
        provider=a.provider,
        provider_message_id=a.provider_message_id,
        status=a.status,
        error_class=a.error_class,
        error_code=a.error_code,
        error_message=a.error_message,
        error_more_info=a.error_more_info,
        provider_request_id=a.provider_request_id,
        tries=a.tries,
        possible_duplicate=a.possible_duplicate,
        created_at=a.created_at,
        updated_at=a.updated_at,
    )


class NotificationsController(Controller):
    path = "/v1/notifications"
    tags = ["notifications"]
    security = [{"ApiKey": []}]

    @post(
        "/",
        status_code=202,
        dependencies={"principal": require_scope("notifications:send", test_keys=True)},
        summary="Notify a person (202: accepted; routing happens in the background)",
        description="Send `Idempotency-Key` to make retries safe: same key and body replays the first response "
        "with `Idempotent-Replayed: true`; another body is 422. A duplicate sent while the first is still being "
        "accepted waits for it, then replays it (409: in flight, retry, only in rare races). Keys are per "
        "environment: a test key never replays a live key's response.",
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        data: NotificationIn,
        principal: Caller,
        db_session: DbSession,
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", max_length=1000)] = None,
    ) -> Response[NotificationAccepted]:
        # One unit of work: the claim (holding the response), the notification and its outbox row commit together.
        key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
        notification_id, now = uuid.uuid4(), utcnow()
        body = NotificationAccepted(id=notification_id, status="accepted", created_at=now)
        if key is not None:
            payload = msgspec.to_builtins(data)
            replay = await idempotency.claim(
                db_session,
                principal.tenant,
                principal.environment,
                key,
                idempotency.fingerprint(payload),
                202,
                msgspec.to_builtins(body),
                legacy=idempotency.legacy_fingerprint(payload),
            )
            if replay is not None:
                return Response(replay.body, status_code=replay.status, headers={"Idempotent-Replayed": "true"})  # type: ignore[arg-type]
        await service.accept(db_session, principal, data, notification_id=notification_id, created_at=now)
        return Response(body, status_code=202)

    @get(
        "/{notification_id:uuid}",
        dependencies={"principal": require_scope("notifications:read", test_keys=True)},
        summary="A notification with its attempts, provider events and routing decisions",
    )
    async def read(self, notification_id: uuid.UUID, principal: Caller) -> NotificationOut:
        n, attempts, events, decisions = await story(principal.tenant, principal.environment, notification_id)
        return NotificationOut(
            id=n.id,
            status=n.status,
            channel=n.channel,
            contact_id=n.contact_id,
            to=n.recipient,
            template=n.template_key,
            metadata=n.metadata_,
            created_at=n.created_at,
            updated_at=n.updated_at,
            attempts=[_attempt(a) for a in attempts],
            events=[
                ProviderEventOut(
                    attempt_id=e.attempt_id,
                    provider=e.provider,
                    status=e.status,
                    error_code=e.error_code,
                    applied=e.applied,
                    occurred_at=e.occurred_at,
                )
                for e in events
            ],
            decisions=[DecisionOut(step=d.step, result=d.result, detail=d.detail, at=d.created_at) for d in decisions],
        )

    @get(
        "/",
        dependencies={"principal": require_scope("notifications:read", test_keys=True)},
        summary="List notifications, newest first",
    )
    async def list(
        self,
        principal: Caller,
        db_session: DbSession,
        status: str | None = None,
        to: str | None = None,
        template: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    ) -> NotificationPage:
        repo = EnvironmentNotificationRepository(db_session, principal.tenant, principal.environment)
        stmt = repo.statement()
        if status:
            stmt = stmt.where(Notification.status == status)
        if template:
            stmt = stmt.where(Notification.template_key == template)
        if created_after:
            stmt = stmt.where(Notification.created_at >= created_after)
        if created_before:
            stmt = stmt.where(Notification.created_at < created_before)
        if to:
            stmt = stmt.where(Notification.contact_id == await _contact_for(db_session, principal.tenant, to))
        rows = await repo.all(paginate(stmt, Notification, cursor, limit))
        return NotificationPage(**page_of(rows, limit, _summary))


async def _contact_for(session: DbSession, tenant_id: uuid.UUID, to: str) -> uuid.UUID | None:
    """`to` may be a phone, an email or a WhatsApp user id."""
    policy = await get_policy(session, tenant_id)
    parsers: tuple[Callable[[str], Any], ...] = (
        lambda v: identifiers.email(v) if "@" in v else None,
        lambda v: identifiers.bsuid(v) if identifiers.is_bsuid(v) else None,
        lambda v: identifiers.phone(v, policy.default_country),
    )
    for parse in parsers:
        try:
            ident = parse(to)
        except IdentifierError:
            return None
        if ident is not None:
            contact = await contacts.find(session, tenant_id, ident)
            return contact.id if contact else None
    return None


ROUTES = [NotificationsController]
