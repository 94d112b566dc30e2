from app.core.repository import TenantRepository
from app.notify.models import Attempt, Decision, Notification, ProviderEvent


class NotificationRepository(TenantRepository[Notification]):
    model = Notification


class AttemptRepository(TenantRepository[Attempt]):
    model = Attempt


class DecisionRepository(TenantRepository[Decision]):
    model = Decision


class ProviderEventRepository(TenantRepository[ProviderEvent]):
    model = ProviderEvent
