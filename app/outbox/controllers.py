"""Operator API for dead letters: jobs that used up their tries, and a way to run them again."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, post
from litestar.params import Parameter

from app.core.deps import DbSession
from app.outbox import service
from app.outbox.schemas import DeadLetterOut, DeadLetterPage, render
from tenants.auth import Caller, require_operator

Limit = Annotated[int, Parameter(ge=1, le=200)]
Kind = Annotated[str | None, Parameter(max_length=32, description="outbox kind, e.g. event.process")]


class OperatorDeadLettersController(Controller):
    path = "/operator/v1/dead-letters"
    tags = ["operator"]
    security = [{"OperatorToken": []}]
    dependencies = {"principal": require_operator()}

    @get("/", summary="List dead letters, newest first (cursor pagination)")
    async def list(
        self,
        principal: Caller,
        db_session: DbSession,
        kind: Kind = None,
        tenant_id: uuid.UUID | None = None,
        cursor: str | None = None,
        limit: Limit = 50,
    ) -> DeadLetterPage:
        return DeadLetterPage(
            **await service.list_dead(
                db_session, kind=kind, tenant_id=tenant_id, cursor=cursor, limit=limit, render=render
            )
        )

    @post("/{item_id:uuid}/retry", status_code=200, summary="Run a dead letter again, with a fresh count of tries")
    async def retry(self, item_id: uuid.UUID, principal: Caller, db_session: DbSession) -> DeadLetterOut:
        return render(await service.retry_dead(db_session, item_id))


ROUTES = [OperatorDeadLettersController]
