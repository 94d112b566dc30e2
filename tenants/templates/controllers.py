from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, post, put
from litestar.params import Parameter

from app.core.deps import DbSession
from app.core.pagination import page_of, paginate
from tenants.auth import Caller, require_scope
from tenants.templates import service
from tenants.templates.models import Template
from tenants.templates.repository import TemplateRepository
from tenants.templates.schemas import SyncOut, TemplateBody, TemplateCreate, TemplateOut, TemplatePage

KeyParam = Annotated[str, Parameter(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,99}$")]


# Test keys may read configuration, never change it (README, API keys).
READ_CONFIG = require_scope("admin", test_keys=True)


class TemplatesController(Controller):
    path = "/v1/templates"
    tags = ["templates"]
    security = [{"ApiKey": []}]
    dependencies = {"principal": require_scope("admin")}

    @post("/", summary="Create a template with its locales")
    async def create(self, data: TemplateCreate, principal: Caller, db_session: DbSession) -> TemplateOut:
        return service.render(await service.create(db_session, principal.tenant, data.key, data, actor=principal))

    @post(
        "/sync",
        status_code=200,
        summary="Sync the templates of the tenant's Twilio account (Content API, with their WhatsApp approval)",
        description=(
            "Reads GET /v1/ContentAndApprovals with the stored Twilio credentials, stores every Content template's"
            " approval status, category, language and variables, and refreshes each template's approval_status."
            " Also runs when Twilio credentials are stored, and periodically (every 15 minutes). Audit-logged."
        ),
    )
    async def sync(self, principal: Caller, db_session: DbSession) -> SyncOut:
        return await service.sync_now(db_session, principal.tenant, actor=principal)

    @get("/", dependencies={"principal": READ_CONFIG}, summary="List templates")
    async def list(
        self,
        principal: Caller,
        db_session: DbSession,
        cursor: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    ) -> TemplatePage:
        repo = TemplateRepository(db_session, principal.tenant)
        rows = await repo.all(paginate(repo.statement(), Template, cursor, limit))
        return TemplatePage(**page_of(rows, limit, service.render))

    @get("/{template_key:str}", dependencies={"principal": READ_CONFIG}, summary="Read a template")
    async def read(self, template_key: KeyParam, principal: Caller, db_session: DbSession) -> TemplateOut:
        return service.render(await service.get(db_session, principal.tenant, template_key))

    @put("/{template_key:str}", summary="Replace a template")
    async def replace(
        self, template_key: KeyParam, data: TemplateBody, principal: Caller, db_session: DbSession
    ) -> TemplateOut:
        return service.render(await service.replace(db_session, principal.tenant, template_key, data, actor=principal))

    @delete("/{template_key:str}", summary="Delete a template")
    async def remove(self, template_key: KeyParam, principal: Caller, db_session: DbSession) -> None:
        await service.delete(db_session, principal.tenant, template_key, actor=principal)


ROUTES = [TemplatesController]
