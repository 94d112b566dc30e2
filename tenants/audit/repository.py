from app.core.repository import TenantRepository
from tenants.audit.models import AuditEntry


class AuditRepository(TenantRepository[AuditEntry]):
    model = AuditEntry
