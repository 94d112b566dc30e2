"""How the API is served: uvicorn's options, and its HTTP protocol with the timeouts uvicorn lacks.

uvicorn closes an idle keep-alive connection (`timeout_keep_alive`) but sets no timer on a new
connection that sends nothing, nor on headers that arrive a byte at a time (slowloris), and
httptools puts no bound on their size. `GuardedHttpToolsProtocol` adds both: a request's line and
headers must be complete within `header_timeout_seconds` of the connection (or of the previous
response), and within `max_header_bytes`; else 408 or 431 problem+json and the connection is closed.
What comes after the headers (a slow body, too many requests at once) is app.core.limits' job.
"""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.core.config import Settings, get_settings

PROTOCOL = "app.server:GuardedHttpToolsProtocol"  # by import string: picklable for --workers > 1


def _problem(status: int, reason: str, slug: str, detail: str) -> bytes:
    body = json.dumps(
        {"type": f"https://notifygw.dev/problems/{slug}", "title": reason, "status": status, "detail": detail}
    ).encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self._header_timeout = settings.header_timeout_seconds
        self._max_header_bytes = settings.max_header_bytes
        self._header_timer: Any = None
        self._header_bytes = 0
        self._in_headers = True  # a new connection waits for its first request line

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_headers:
            self._header_bytes += len(data)
            if self._header_bytes > self._max_header_bytes:
                self._refuse(
                    431,
                    "Request Header Fields Too Large",
                    "headers-too-large",
                    f"the request line and headers exceed {self._max_header_bytes} bytes",
                )
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._in_headers = False
        self._header_bytes = 0
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle now: uvicorn's keep-alive timer runs; the header clock restarts with the next request.
        self._in_headers = True
        self._header_bytes = 0

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self._header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served: its body has app.core.limits' deadline
        if self._header_bytes == 0 and not self.pipeline:
            self.transport.close()  # never sent a byte: nothing to answer
            return
        self._refuse(
            408,
            "Request Timeout",
            "request-timeout",
            f"the request headers did not arrive within {self._header_timeout:g} s",
        )

    def _refuse(self, status: int, reason: str, slug: str, detail: str) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_problem(status, reason, slug, detail))
            self.transport.close()


def uvicorn_options(settings: Settings | None = None) -> dict[str, Any]:
    """What `notifygw serve` and `notifygw dev` pass to uvicorn.run."""
    settings = settings or get_settings()
    return {
        "loop": "uvloop",
        "http": PROTOCOL,
        "access_log": False,
        "log_config": None,
        "timeout_keep_alive": settings.keepalive_timeout_seconds,
        # Uvicorn's own cap (a plain-text 503) counts open connections, idle ones too: a backstop far
        # above the in-app limit, which answers problem+json with Retry-After (app.core.limits).
        "limit_concurrency": settings.max_connections,
        # Behind a reverse proxy: believe its X-Forwarded-* only from the addresses named. Nothing
        # here depends on the client's address; signatures are checked against NOTIFYGW_PUBLIC_BASE_URL.
        "proxy_headers": settings.forwarded_allow_ips is not None,
        **({"forwarded_allow_ips": settings.forwarded_allow_ips} if settings.forwarded_allow_ips else {}),
    }
