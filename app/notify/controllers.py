"""Client API: notify a person, and read back what happened and why."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import HeaderParameter, Parameter

from app.core.deps import DbSession
from app.core.pagination import page_of, paginate
from app.notify import idempotency, service
from app.notify.models import Attempt, Decision, Notification, ProviderEvent
from app.notify.repository import AttemptRepository, DecisionRepository, NotificationRepository, ProviderEventRepository
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


def _summary(n: Notification) -> NotificationSummary:
    return NotificationSummary(id=n.id, status=n.status, channel=n.channel, to=n.recipient, template=n.template_key,
                               created_at=n.created_at)


def _attempt(a: Attempt) -> AttemptOut:
    return AttemptOut(id=a.id, channel=a.channel, kind=a.kind, provider=a.provider, provider_message_id=a.provider_message_id,
                      status=a.status, error_class=a.error_class, error_code=a.error_code, error_message=a.error_message,
                      tries=a.tries, possible_duplicate=a.possible_duplicate, created_at=a.created_at, updated_at=a.updated_at)


class NotificationsController(Controller):
    path = "/v1/notifications"
    tags = ["notifications"]
    security = [{"ApiKey": []}]

    @post("/", status_code=202, dependencies={"principal": require_scope("notifications:send")},
          summary="Notify a person (202: accepted; routing happens in the background)",
          description="Send `Idempotency-Key` to make retries safe: same key and body replays the first response "
                      "with `Idempotent-Replayed: true`; another body is 422; a request still in flight is 409.")
    async def create(self, request: Request[Any, Any, Any], data: NotificationIn, principal: Caller,
                     db_session: DbSession,
                     idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", max_length=1000)] = None,
                     ) -> Response[NotificationAccepted]:
        if idempotency_key is not None:
            key = idempotency.check_key(idempotency_key)
            request_hash = idempotency.fingerprint(msgspec.to_builtins(data))
            replay = await idempotency.claim(principal.tenant, key, request_hash)
            if replay is not None:
                return Response(replay.body, status_code=replay.status, headers={"Idempotent-Replayed": "true"})  # type: ignore[arg-type]
        try:
            n = await service.accept(db_session, principal, data)
            body = NotificationAccepted(id=n.id, status=n.status, created_at=n.created_at)
            if idempotency_key is not None:
                await idempotency.complete(db_session, principal.tenant, idempotency_key, 202, msgspec.to_builtins(body))
        except BaseException:
            if idempotency_key is not None:
                await idempotency.release(principal.tenant, idempotency_key)
            raise
        return Response(body, status_code=202)

    @get("/{notification_id:uuid}", dependencies={"principal": require_scope("notifications:read")},
         summary="A notification with its attempts, provider events and routing decisions")
    async def read(self, notification_id: uuid.UUID, principal: Caller, db_session: DbSession) -> NotificationOut:
        n = await NotificationRepository(db_session, principal.tenant).get(notification_id, what="notification")
        attempts_repo = AttemptRepository(db_session, principal.tenant)
        attempts = await attempts_repo.all(attempts_repo.statement().where(Attempt.notification_id == n.id).order_by(Attempt.created_at))
        events_repo = ProviderEventRepository(db_session, principal.tenant)
        events = await events_repo.all(events_repo.statement().where(ProviderEvent.attempt_id.in_([a.id for a in attempts]))
                                       .order_by(ProviderEvent.created_at)) if attempts else []
        decisions_repo = DecisionRepository(db_session, principal.tenant)
        decisions = await decisions_repo.all(decisions_repo.statement().where(Decision.notification_id == n.id)
                                             .order_by(Decision.created_at, Decision.id))
        return NotificationOut(
            id=n.id, status=n.status, channel=n.channel, contact_id=n.contact_id, to=n.recipient, template=n.template_key,
            metadata=n.metadata_, created_at=n.created_at, updated_at=n.updated_at,
            attempts=[_attempt(a) for a in attempts],
            events=[ProviderEventOut(attempt_id=e.attempt_id, provider=e.provider, status=e.status, error_code=e.error_code,
                                     applied=e.applied, occurred_at=e.occurred_at) for e in events],
            decisions=[DecisionOut(step=d.step, result=d.result, detail=d.detail, at=d.created_at) for d in decisions],
        )

    @get("/", dependencies={"principal": require_scope("notifications:read")}, summary="List notifications, newest first")
    async def list(self, principal: Caller, db_session: DbSession, status: str | None = None, to: str | None = None,
                   template: str | None = None, created_after: datetime | None = None, created_before: datetime | None = None,
                   cursor: str | None = None, limit: Annotated[int, Parameter(ge=1, le=200)] = 50) -> NotificationPage:
        repo = NotificationRepository(db_session, principal.tenant)
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
    from tenants.contacts import identifiers, service as contacts
    from tenants.contacts.identifiers import IdentifierError
    from tenants.routing.service import get_policy

    policy = await get_policy(session, tenant_id)
    for parse in (lambda v: identifiers.email(v) if "@" in v else None,
                  lambda v: identifiers.bsuid(v) if identifiers.is_bsuid(v) else None,
                  lambda v: identifiers.phone(v, policy.default_country)):
        try:
            ident = parse(to)
        except IdentifierError:
            return None
        if ident is not None:
            contact = await contacts.find(session, tenant_id, ident)
            return contact.id if contact else None
    return None


ROUTES = [NotificationsController]
