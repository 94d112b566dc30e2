from app.core.repository import TenantRepository
from tenants.templates.models import Template


class TemplateRepository(TenantRepository[Template]):
    model = Template

    async def by_key(self, key: str) -> Template | None:
        return await self.one_by(key=key)
