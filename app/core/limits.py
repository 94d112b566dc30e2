"""Slow and greedy clients, at the ASGI edge: a deadline on the request body, and a cap on requests in flight.

The server (app/server.py) bounds what happens before the app is called: idle connections, and
headers that trickle in. Once the headers are in, the app is called, and two things remain:

- a body that trickles (or never comes) would hold its request, and its slot, forever: the whole
  body must arrive within `body_timeout_seconds` of the headers, else 408 problem+json and the
  connection is closed;
- more requests than the process can serve only queue up and time out together: above
  `max_concurrent_requests` in flight, a request is answered at once with 503 problem+json and
  `Retry-After` (uvicorn's own limit answers a plain-text 503 without it), before any work is done.
  Provider callbacks (`exempt_prefixes`, /webhooks/) are never refused for load: Twilio retries a
  refused callback once at most and ignores Retry-After, so a 503 there loses a status or an inbound
  message. Their handler only verifies, stores and queues; the body deadline still applies.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPResponseStartEvent, Receive, ReceiveMessage, Scope, Send

from app.core.errors import AppError

OVERLOAD_RETRY_AFTER_SECONDS = 1


class BodyTimeout(AppError):
    status_code = 408
    title = "Request timeout"
    type_slug = "request-timeout"

    def __init__(self, seconds: float) -> None:
        # Connection: close: the rest of the body may still be on its way; this connection is done.
        super().__init__(f"the request body did not arrive within {seconds:g} s", headers={"Connection": "close"})


def _overloaded_body(scope: Scope, limit: int) -> bytes:
    body: dict[str, Any] = {
        "type": "https://notifygw.dev/problems/overloaded",
        "title": "Service unavailable",
        "status": 503,
        "detail": f"more than {limit} requests in progress; retry shortly",
        "instance": scope.get("path", ""),
    }
    request_id = scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    return json.dumps(body).encode()


def request_limits_middleware(
    app: ASGIApp, *, max_concurrent: int, body_timeout: float, exempt_prefixes: tuple[str, ...] = ("/webhooks/",)
) -> ASGIApp:
    in_flight = 0

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal in_flight
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        counted = not scope.get("path", "").startswith(exempt_prefixes)
        if counted and in_flight >= max_concurrent:
            payload = _overloaded_body(scope, max_concurrent)
            start: HTTPResponseStartEvent = {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"retry-after", str(OVERLOAD_RETRY_AFTER_SECONDS).encode()),
                ],
            }
            await send(start)
            await send({"type": "http.response.body", "body": payload, "more_body": False})
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + body_timeout
        body_done = False

        async def receive_by_deadline() -> ReceiveMessage:
            nonlocal body_done
            if body_done:  # after the body, receive() only waits for a disconnect: no deadline on that
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):  # no extra task, unlike wait_for
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(body_timeout) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        if not counted:
            await app(scope, receive_by_deadline, send)
            return
        in_flight += 1
        try:
            await app(scope, receive_by_deadline, send)
        finally:
            in_flight -= 1

    return middleware
