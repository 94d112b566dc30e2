"""Console: the tenant's outbound webhook endpoints, over app/endpoints/service (as /v1/webhook-endpoints).

List and add endpoints (the signing secret is shown once), an endpoint's deliveries with every
attempt, resend one, rotate the secret (the new one shown once), disable or enable, and remove.
"""

from __future__ import annotations

import json
from typing import Any, get_args

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from app.console.common import HANDLERS, Ctx, changing, field_errors, form_lists, signed_in, uuid_or_404
from app.core.deps import DbSession
from app.core.errors import ValidationFailed
from app.core.pagination import paginate
from app.endpoints import service
from app.endpoints.repository import EndpointRepository
from app.endpoints.schemas import EndpointCreate, EndpointCreated, EndpointUpdate, EventType
from app.webhooks.models import WebhookEndpoint

EVENTS = get_args(EventType)
PAGE = 50


class EndpointPages(Controller):
    path = "/console"
    include_in_schema = False
    exception_handlers = HANDLERS

    async def _list(
        self,
        ctx: Ctx,
        db: DbSession,
        *,
        status_code: int = 200,
        created: EndpointCreated | None = None,
        errors: dict[str, str] | None = None,
        form: Any = None,
    ) -> Response[str]:
        repo = EndpointRepository(db, ctx.tenant)
        rows = await repo.all(paginate(repo.statement(), WebhookEndpoint, None, 200))
        return ctx.view(
            "endpoints.html",
            status_code=status_code,
            rows=[service.render(r) for r in rows],
            events=EVENTS,
            created=created,
            errors=errors or {},
            form=form or {},
        )

    @get("/webhooks")
    async def endpoints(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request, db_session)
        return await self._list(ctx, db_session)

    @post("/webhooks", status_code=200)
    async def create(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx, form = await changing(request, db_session, live=True)
        events = await form_lists(request, "events")
        try:
            data = msgspec.convert({"url": form.get("url", "").strip(), "events": events}, EndpointCreate)
            created = await service.create(
                db_session, ctx.tenant, url=data.url, events=data.events, actor=ctx.principal
            )
        except (msgspec.ValidationError, ValidationFailed) as exc:
            await db_session.rollback()
            errors = {p.strip("/").split("/")[0] or "form": m for p, m in field_errors(exc).items()}
            return await self._list(ctx, db_session, status_code=422, errors=errors, form={**form, "events": events})
        # The one time the secret is shown: the page is never stored (Cache-Control: no-store).
        return await self._list(ctx, db_session, created=created)

    @get("/webhooks/{endpoint_id:str}")
    async def endpoint(self, endpoint_id: str, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request, db_session)
        ctx.live_only(reading=True)  # deliveries carry live payloads (the API's deliveries list refuses a test key)
        return await self._endpoint(ctx, db_session, endpoint_id, request.query_params.get("cursor"))

    async def _endpoint(
        self,
        ctx: Ctx,
        db: DbSession,
        endpoint_id: str,
        cursor: str | None,
        *,
        secret: str | None = None,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Response[str]:
        eid = uuid_or_404(endpoint_id)
        row = service.render(await service.get(db, ctx.tenant, eid))
        page = await service.list_deliveries(db, ctx.tenant, eid, cursor=cursor, limit=PAGE)
        return ctx.view(
            "endpoint.html",
            status_code=status_code,
            errors=errors or {},
            events=EVENTS,
            e=row,
            deliveries=page["items"],
            next_cursor=page["next_cursor"],
            secret=secret,
            json=json,
        )

    @post("/webhooks/{endpoint_id:str}/rotate-secret", status_code=200)
    async def rotate(self, endpoint_id: str, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx, _ = await changing(request, db_session, live=True)
        created = await service.rotate_secret(db_session, ctx.tenant, uuid_or_404(endpoint_id), actor=ctx.principal)
        return await self._endpoint(ctx, db_session, endpoint_id, None, secret=created.secret)

    @post("/webhooks/{endpoint_id:str}/status", status_code=303)
    async def set_status(
        self, endpoint_id: str, request: Request[Any, Any, Any], db_session: DbSession
    ) -> Response[Any]:
        ctx, form = await changing(request, db_session, live=True)
        status = "enabled" if form.get("status") == "enabled" else "disabled"
        eid = uuid_or_404(endpoint_id)
        await service.update(db_session, ctx.tenant, eid, url=None, events=None, status=status, actor=ctx.principal)
        return Redirect(f"/console/webhooks/{eid}", status_code=303)

    @post("/webhooks/{endpoint_id:str}", status_code=303)
    async def edit(self, endpoint_id: str, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        ctx, form = await changing(request, db_session, live=True)
        eid = uuid_or_404(endpoint_id)
        events = await form_lists(request, "events")
        try:
            data = msgspec.convert({"url": form.get("url", "").strip(), "events": events}, EndpointUpdate)
            await service.update(
                db_session, ctx.tenant, eid, url=data.url, events=data.events, status=None, actor=ctx.principal
            )
        except (msgspec.ValidationError, ValidationFailed) as exc:
            await db_session.rollback()
            errors = {p.strip("/").split("/")[0] or "form": m for p, m in field_errors(exc).items()}
            return await self._endpoint(ctx, db_session, endpoint_id, None, errors=errors, status_code=422)
        return Redirect(f"/console/webhooks/{eid}", status_code=303)

    @post("/webhooks/{endpoint_id:str}/remove", status_code=303)
    async def remove(self, endpoint_id: str, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        ctx, _ = await changing(request, db_session, live=True)
        await service.delete(db_session, ctx.tenant, uuid_or_404(endpoint_id), actor=ctx.principal)
        return Redirect("/console/webhooks", status_code=303)

    @post("/webhooks/{endpoint_id:str}/deliveries/{delivery_id:str}/resend", status_code=303)
    async def resend(
        self, endpoint_id: str, delivery_id: str, request: Request[Any, Any, Any], db_session: DbSession
    ) -> Response[Any]:
        ctx, _ = await changing(request, db_session, live=True)
        eid, did = uuid_or_404(endpoint_id), uuid_or_404(delivery_id)
        await service.resend(db_session, ctx.tenant, eid, did, actor=ctx.principal)
        return Redirect(f"/console/webhooks/{eid}?resent={did}", status_code=303)


ROUTES = [EndpointPages]
