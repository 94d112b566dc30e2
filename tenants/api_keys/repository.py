from app.core.repository import TenantRepository
from tenants.api_keys.models import ApiKey


class ApiKeyRepository(TenantRepository[ApiKey]):
    model = ApiKey
