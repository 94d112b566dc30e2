from app.core.repository import TenantRepository
from tenants.credentials.models import SendgridCredential, TwilioCredential


class TwilioCredentialRepository(TenantRepository[TwilioCredential]):
    model = TwilioCredential


class SendgridCredentialRepository(TenantRepository[SendgridCredential]):
    model = SendgridCredential
