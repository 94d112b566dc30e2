"""The Litestar application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from app import models  # noqa: F401  (every table and mapper, before the first query)
from app.actors import ACTORS
from app.core.config import Settings, get_settings, set_settings
from app.core.db import dispose_engine, unit_of_work
from app.core.jsonbody import JsonGuardedRequest
from app.core.limits import request_limits_middleware
from app.core.logging import configure_logging
from app.core.middleware import request_id_middleware
from app.core.openapi_viewer import OfflineSwaggerPlugin
from app.core.problem_docs import document_problems
from app.core.problems import EXCEPTION_HANDLERS
from app.core.queue import declare, setup_broker
from app.erasure import service as erasure
from app.routes import ROUTES

VERSION = "0.1.0"


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="notifygw",
        version=VERSION,
        description="Multi-tenant WhatsApp (Twilio) notification gateway with SendGrid email fallback.",
        path="/schema",
        render_plugins=[OfflineSwaggerPlugin("/schema")],  # served from an installed package, offline too
        components=Components(
            security_schemes={
                "ApiKey": SecurityScheme(type="http", scheme="bearer", description="Tenant API key: ngw_live_..."),
                "OperatorToken": SecurityScheme(type="http", scheme="bearer", description="NOTIFYGW_OPERATOR_TOKEN"),
            }
        ),
    )


def create_app(settings: Settings | None = None, *, in_process_worker: bool | None = None) -> Litestar:
    if settings is not None:
        set_settings(settings)
    settings = get_settings()
    configure_logging(settings.log_level)
    setup_broker(settings)
    declare(ACTORS)  # this process sends their jobs (and the dev worker runs them)
    handlers = list(ROUTES)
    if settings.mount_emulator:
        from channels.emulator.app import emulator_router

        handlers.append(emulator_router())
    run_worker = settings.redis_url is None if in_process_worker is None else in_process_worker

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        worker = None
        if run_worker:
            from app.worker import start_in_process_worker

            worker = start_in_process_worker()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            from app.core.queue import sender

            await asyncio.to_thread(sender.drain, 5.0)  # the jobs of the last requests, off the loop
            from app.core import providers

            if providers.twilio.cache_info().currsize:  # never import the SDK just to close it
                await providers.twilio().aclose()  # this loop's pooled HTTP session to Twilio
            await dispose_engine()

    app = Litestar(
        route_handlers=handlers,
        dependencies={
            "db_session": Provide(unit_of_work),
            # The composition point of erasure: tenants' DELETE /v1/contacts/{id} calls app/erasure.
            "erase_contact": Provide(erasure.provide, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=settings.max_body_bytes,
        request_class=JsonGuardedRequest,  # every JSON body bounded in depth and free of U+0000
        openapi_config=openapi_config(),
        lifespan=[lifespan],
        debug=False,
        logging_config=None,  # app.core.logging owns the handlers (JSON, redacted)
    )
    document_problems(app.openapi_schema)
    # Outermost, not per-route: unmatched paths (404/405) carry a request id too, and an overloaded
    # process refuses a request before Litestar does any work for it.
    app.asgi_handler = request_id_middleware(
        request_limits_middleware(
            app.asgi_handler,
            max_concurrent=settings.max_concurrent_requests,
            body_timeout=settings.body_timeout_seconds,
        )
    )
    return app
