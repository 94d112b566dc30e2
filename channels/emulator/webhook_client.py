"""The emulator's outgoing HTTP: a small HTTP/1.1 POST client with keep-alive pools, on the running loop.

Why not httpx: a status callback through httpx cost 1.1–1.8 ms of CPU (anyio, httpcore's pool
bookkeeping, its per-request logging), four or more per notification, and the emulator is what users
load-test against (docs/performance.md, "Emulator CPU"). A webhook is one POST whose answer is only
recorded, so this client does just that: one pool of idle connections per origin, reused while the
peer keeps them alive, honouring `Connection: close` and HTTP/1.0. The error names follow httpx's
(`ConnectError`, `ConnectTimeout`, `ReadTimeout`, `RemoteProtocolError`): the control API records
them as `"<Name>: <detail>"` and users read them there.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi

# Built once: loading certifi's CA bundle costs ~13 ms of CPU per SSLContext.
_TLS = ssl.create_default_context(cafile=certifi.where())
IDLE_SECONDS = 2.0  # below uvicorn's 5 s keep-alive, so a pooled connection is rarely closed under us
MAX_IDLE_PER_ORIGIN = 64
MAX_BODY_KEPT = 64 * 1024  # a longer answer is read up to the recorded 4 KiB, then the connection is dropped
MAX_HEAD = 64 * 1024
_NO_BODY = frozenset((204, 304))

Origin = tuple[str, str, int]


class WebhookError(Exception):
    """A POST that got no HTTP answer."""


class ConnectError(WebhookError):
    pass


class ConnectTimeout(WebhookError):
    pass


class ReadTimeout(WebhookError):
    pass


class RemoteProtocolError(WebhookError):
    pass


class _StaleConnection(Exception):
    """The connection ended before any byte of an answer."""


@dataclass(slots=True)
class Answer:
    status_code: int
    content_type: str | None
    body: bytes


@dataclass(slots=True)
class _Target:
    """What a URL resolves to, parsed once per distinct URL."""

    origin: Origin
    target: bytes  # path and query, as sent on the request line
    host_header: bytes


class _Connection:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        return now - self.idle_since < IDLE_SECONDS and not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


def _parse_target(url: str) -> _Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ConnectError(f"unsupported URL {url!r}")
    port = parts.port or (443 if scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    netloc = parts.netloc.rpartition("@")[2]  # never send userinfo in Host
    return _Target((scheme, parts.hostname, port), target.encode("ascii"), netloc.encode("idna"))


class WebhookClient:
    """One per event loop (see `client_for_loop`), shared by every message's lifecycle."""

    def __init__(self) -> None:
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._targets: dict[str, _Target] = {}

    def _target(self, url: str) -> _Target:
        found = self._targets.get(url)
        if found is None:
            try:
                found = _parse_target(url)
            except (UnicodeError, ValueError) as exc:
                raise ConnectError(f"bad URL {url!r}: {exc}") from exc
            if len(self._targets) > 4096:  # each message may have its own query string
                self._targets.clear()
            self._targets[url] = found
        return found

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], *, connect_timeout: float, read_timeout: float
    ) -> Answer:
        """POST `body` to `url`: the answer, or a WebhookError subclass when none came."""
        target = self._target(url)
        head = [b"POST ", target.target, b" HTTP/1.1\r\nHost: ", target.host_header, b"\r\n"]
        for name, value in headers.items():
            head += (name.encode("latin-1"), b": ", value.encode("latin-1"), b"\r\n")
        head += (b"Accept: */*\r\nAccept-Encoding: identity\r\nContent-Length: ", str(len(body)).encode(), b"\r\n\r\n")
        request = b"".join(head) + body

        conn = self._checkout(target.origin)
        if conn is not None:
            try:
                return await self._exchange(target.origin, conn, request, read_timeout)
            except _StaleConnection:
                pass  # closed by the peer while idle, before it answered a byte: once more on a new connection
        conn = await self._connect(target.origin, connect_timeout)
        try:
            return await self._exchange(target.origin, conn, request, read_timeout)
        except _StaleConnection as exc:
            raise RemoteProtocolError("Server disconnected without sending a response.") from exc

    async def _connect(self, origin: Origin, timeout: float) -> _Connection:
        scheme, host, port = origin
        try:
            async with asyncio.timeout(timeout):
                if scheme == "https":
                    reader, writer = await asyncio.open_connection(
                        host, port, ssl=_TLS, server_hostname=host, limit=MAX_HEAD
                    )
                else:
                    reader, writer = await asyncio.open_connection(host, port, limit=MAX_HEAD)
        except TimeoutError as exc:
            raise ConnectTimeout(f"no connection to {host}:{port} within {timeout:g} s") from exc
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            raise ConnectError(str(exc) or type(exc).__name__) from exc
        return _Connection(reader, writer)

    async def _exchange(self, origin: Origin, conn: _Connection, request: bytes, read_timeout: float) -> Answer:
        keep = False
        try:
            conn.writer.write(request)
            async with asyncio.timeout(read_timeout):
                answer, keep = await _read_answer(conn.reader)
        except TimeoutError as exc:
            raise ReadTimeout(f"no answer within {read_timeout:g} s") from exc
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise _StaleConnection from exc
            raise RemoteProtocolError("Server disconnected in the middle of its answer.") from exc
        except ConnectionError as exc:
            raise _StaleConnection from exc
        except (asyncio.LimitOverrunError, ValueError) as exc:
            raise RemoteProtocolError(f"malformed answer: {exc}") from exc
        finally:
            if keep:
                self._checkin(origin, conn)
            else:
                conn.close()
        return answer

    def _checkout(self, origin: Origin) -> _Connection | None:
        pool = self._idle.get(origin)
        now = time.monotonic()
        while pool:
            conn = pool.pop()  # the most recently used: the likeliest to be alive
            if conn.usable(now):
                return conn
            conn.close()
        return None

    def _checkin(self, origin: Origin, conn: _Connection) -> None:
        pool = self._idle.setdefault(origin, deque())
        conn.idle_since = time.monotonic()
        pool.append(conn)
        while len(pool) > MAX_IDLE_PER_ORIGIN:
            pool.popleft().close()

    def close(self) -> None:
        for pool in self._idle.values():
            for conn in pool:
                conn.close()
        self._idle.clear()


async def _read_answer(reader: asyncio.StreamReader) -> tuple[Answer, bool]:
    """Status line, headers and body; and whether the connection may carry another request."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(rest[:3])
        fields: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        if not 100 <= status < 200:  # an interim answer (100 Continue) comes before the real one
            break
    connection = fields.get("connection", "").lower()
    keep = (version == "HTTP/1.1" and "close" not in connection) or (
        version == "HTTP/1.0" and "keep-alive" in connection
    )
    content_type = fields.get("content-type")
    if status in _NO_BODY:
        return Answer(status, content_type, b""), keep
    if "chunked" in fields.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in fields:
        length = int(fields["content-length"])
        if length > MAX_BODY_KEPT:
            return Answer(status, content_type, await reader.readexactly(4096)), False
        body = await reader.readexactly(length)
    else:  # delimited by the end of the connection
        body = await reader.read(MAX_BODY_KEPT)
        keep = False
    return Answer(status, content_type, body), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        chunk = (await reader.readexactly(size + 2))[:-2]
        total += len(chunk)
        if total > MAX_BODY_KEPT:
            raise ValueError("chunked answer longer than 64 KiB")
        parts.append(chunk)


_CLIENTS: dict[asyncio.AbstractEventLoop, WebhookClient] = {}


def client_for_loop() -> WebhookClient:
    """The running loop's client: connections belong to one loop, and tests run the emulator in a thread of its own."""
    loop = asyncio.get_running_loop()
    client = _CLIENTS.get(loop)
    if client is None:
        for old in [old for old in _CLIENTS if old.is_closed()]:
            del _CLIENTS[old]
        client = _CLIENTS[loop] = WebhookClient()
    return client
