from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.params import Parameter

from app.core.deps import DbSession
from app.core.pagination import page_of, paginate
from tenants.audit.models import AuditEntry
from tenants.audit.repository import AuditRepository
from tenants.audit.schemas import AuditEntryOut, AuditPage
from tenants.auth import Caller, require_scope


def render(e: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=e.id,
        actor_type=e.actor_type,
        actor_id=e.actor_id,
        action=e.action,
        target_type=e.target_type,
        target_id=e.target_id,
        before=e.before,
        after=e.after,
        request_id=e.request_id,
        created_at=e.created_at,
    )


@get(
    "/v1/audit-log",
    tags=["audit"],
    security=[{"ApiKey": []}],
    dependencies={"principal": require_scope("admin")},
    summary="Every operator and admin change to this tenant, newest first",
)
async def list_audit_log(
    principal: Caller,
    db_session: DbSession,
    cursor: str | None = None,
    limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    action: Annotated[str | None, Parameter(max_length=64)] = None,
    target_type: Annotated[str | None, Parameter(max_length=64)] = None,
    target_id: Annotated[str | None, Parameter(max_length=128)] = None,
) -> AuditPage:
    repo = AuditRepository(db_session, principal.tenant)
    stmt = repo.statement()
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if target_type:
        stmt = stmt.where(AuditEntry.target_type == target_type)
    if target_id:
        stmt = stmt.where(AuditEntry.target_id == target_id)
    rows = await repo.all(paginate(stmt, AuditEntry, cursor, limit))
    return AuditPage(**page_of(rows, limit, render))


ROUTES = [list_audit_log]
