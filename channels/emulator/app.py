"""Assemble the emulator: a Router to mount at the root of another app, or a standalone Litestar app."""

from __future__ import annotations

from litestar import Litestar, Router
from litestar.di import Provide

from channels.emulator import content_api, control, sendgrid_api, twilio_api
from channels.emulator.errors import exception_handler
from channels.emulator.state import EmulatorState


def emulator_router(state: EmulatorState | None = None) -> Router:
    """Every emulator route, at the paths Twilio and SendGrid use, hidden from OpenAPI.

    Each router owns one EmulatorState (a new one unless given); handlers receive it as `emu`.
    """
    emu = state or EmulatorState()

    def provide_state() -> EmulatorState:
        return emu

    router = Router(
        path="/",
        route_handlers=[*twilio_api.HANDLERS, *content_api.HANDLERS, *sendgrid_api.HANDLERS, *control.HANDLERS],
        dependencies={"emu": Provide(provide_state, sync_to_thread=False, use_cache=True)},
        exception_handlers={Exception: exception_handler},
        include_in_schema=False,
        signature_namespace={"EmulatorState": EmulatorState},
        request_max_body_size=32 * 1024 * 1024,  # SendGrid accepts mail up to 30 MB
    )
    router.opt["emulator_state"] = emu
    return router


def create_emulator_app(state: EmulatorState | None = None) -> Litestar:
    """The emulator on its own (`notifygw emulator`); the state is at `app.state.emulator`."""
    router = emulator_router(state)
    # App-level too, so routing errors (404, 405) also answer in the called peer's shape.
    app = Litestar(
        route_handlers=[router], openapi_config=None, debug=False, exception_handlers={Exception: exception_handler}
    )
    app.state.emulator = router.opt["emulator_state"]
    return app
