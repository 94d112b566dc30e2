"""A minimal Litestar app for the ASGI server benchmark (issue 2).

One POST route that takes an ``application/x-www-form-urlencoded`` body shaped like a Twilio
message status callback, parses it with ``request.form()`` and answers 204. It touches no
database, queue or signature check, so the figures measure the server plus Litestar's request
and form handling, not notifygw's pipeline.

Served as a factory (``bench.server.app:create_app``) the same way ``notifygw serve`` serves
``app.asgi:create_app``. ``bench/server/run.py`` drives it; see ``bench/README.md``.
"""

from __future__ import annotations

from litestar import Litestar, Request, post
from litestar.response import Response

PATH = "/webhooks/twilio/status"

# The fields a real status callback must carry; a body missing one answers 400, so a load
# generator that sent the wrong body shows up as non-2xx responses instead of fast 204s.
REQUIRED = ("AccountSid", "MessageSid", "MessageStatus", "From", "To")


@post(PATH, status_code=204)
async def twilio_status(request: Request) -> Response[None]:
    form = await request.form()
    if any(not form.get(name) for name in REQUIRED):
        return Response(content=None, status_code=400)
    # Read every field once, as a real handler would when it records the callback.
    _ = {key: form.get(key) for key in form}
    return Response(content=None, status_code=204)


def create_app() -> Litestar:
    return Litestar(route_handlers=[twilio_status], openapi_config=None, debug=False, logging_config=None)
