import uuid

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import snapshot
from app.core.repository import TenantRepository
from app.notify.models import Attempt, Decision, Notification, ProviderEvent


class NotificationRepository(TenantRepository[Notification]):
    model = Notification


class EnvironmentNotificationRepository(NotificationRepository):
    """What an API key reads: its tenant's notifications of its own environment (a test key never sees live ones)."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, environment: str) -> None:
        super().__init__(session, tenant_id)
        self.environment = environment

    def statement(self) -> Select[Notification]:
        return super().statement().where(Notification.environment == self.environment)


class AttemptRepository(TenantRepository[Attempt]):
    model = Attempt


class DecisionRepository(TenantRepository[Decision]):
    model = Decision


class ProviderEventRepository(TenantRepository[ProviderEvent]):
    model = ProviderEvent


async def story(
    tenant_id: uuid.UUID, environment: str, notification_id: uuid.UUID
) -> tuple[Notification, list[Attempt], list[ProviderEvent], list[Decision]]:
    """A notification with its attempts, their provider events and its decisions, each in order: what
    the API's read and the console's timeline show. Four reads in one snapshot (db.snapshot): read
    one by one, a worker's commit between them showed a decision of that commit beside the
    notification's status from before it (`held`, yet still `accepted`)."""
    async with snapshot() as session:
        n = await EnvironmentNotificationRepository(session, tenant_id, environment).get(
            notification_id, what="notification"
        )
        attempts_repo = AttemptRepository(session, tenant_id)
        attempts = list(
            await attempts_repo.all(
                attempts_repo.statement().where(Attempt.notification_id == n.id).order_by(Attempt.created_at)
            )
        )
        events: list[ProviderEvent] = []
        if attempts:
            events_repo = ProviderEventRepository(session, tenant_id)
            events = list(
                await events_repo.all(
                    events_repo.statement()
                    .where(ProviderEvent.attempt_id.in_([a.id for a in attempts]))
                    .order_by(ProviderEvent.created_at)
                )
            )
        decisions_repo = DecisionRepository(session, tenant_id)
        decisions = list(
            await decisions_repo.all(
                decisions_repo.statement()
                .where(Decision.notification_id == n.id)
                .order_by(Decision.created_at, Decision.id)
            )
        )
        return n, attempts, events, decisions
