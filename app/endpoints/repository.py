from app.core.repository import TenantRepository
from app.webhooks.models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint


class EndpointRepository(TenantRepository[WebhookEndpoint]):
    model = WebhookEndpoint


class DeliveryRepository(TenantRepository[WebhookDelivery]):
    model = WebhookDelivery


class DeliveryAttemptRepository(TenantRepository[WebhookDeliveryAttempt]):
    model = WebhookDeliveryAttempt
