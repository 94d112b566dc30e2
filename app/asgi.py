"""The Litestar application factory."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from app.core.config import Settings, get_settings, set_settings
from app.core.db import dispose_engine, unit_of_work
from app.core.discovery import import_models, import_tasks, route_handlers
from app.core.logging import configure_logging
from app.core.problem_docs import document_problems
from app.core.middleware import request_id_middleware
from app.core.problems import EXCEPTION_HANDLERS
from app.core.queue import setup_broker

VERSION = "0.1.0"


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="notifygw",
        version=VERSION,
        description="Multi-tenant WhatsApp (Twilio) notification gateway with SendGrid email fallback.",
        path="/schema",
        render_plugins=[ScalarRenderPlugin()],
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
    import_models()
    import_tasks()
    handlers = route_handlers()
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
            from app.core import providers

            if providers.twilio.cache_info().currsize:  # never import the SDK just to close it
                await providers.twilio().aclose()  # this loop's pooled HTTP session to Twilio
            await dispose_engine()

    app = Litestar(
        route_handlers=handlers,
        dependencies={"db_session": Provide(unit_of_work)},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=settings.max_body_bytes,
        openapi_config=openapi_config(),
        lifespan=[lifespan],
        debug=False,
        logging_config=None,  # app.core.logging owns the handlers (JSON, redacted)
    )
    document_problems(app.openapi_schema)
    # Outermost, not per-route: unmatched paths (404/405) carry a request id too.
    app.asgi_handler = request_id_middleware(app.asgi_handler)
    return app
