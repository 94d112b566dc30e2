"""A counting TCP proxy in front of PostgreSQL: database round trips as the driver makes them.

Used by bench/sql_trace.py. A round trip is one message sent to PostgreSQL and its answer (issue 13):
in the wire protocol, a client waits for an answer after a simple `Query` ('Q', which is how BEGIN,
COMMIT and a parameterless statement go), after a `Sync` ('S', which closes each extended-protocol
exchange: Bind/Execute... Sync), or after a `Flush` ('H': asyncpg prepares a statement with
Parse/Describe/Flush and waits for its description before it binds). So the proxy counts, per
listener, every 'Q', 'S' and 'H' message the clients send. That covers SQLAlchemy, raw asyncpg and anything else alike, without touching
their code. An SSLRequest or GSSENCRequest is refused here (answered 'N'), so the client goes on in
plain text over loopback and its messages can be read.

    proxy = CountingProxy({"api": 0, "worker": 0})   # listener name -> port (0: a free one)
    proxy.start(); proxy.ports["api"]; proxy.snapshot() -> {"api": {"round_trips": .., "Q": .., ...}}
"""

from __future__ import annotations

import asyncio
import collections
import struct
import threading
from typing import Any

HOST = "127.0.0.1"
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


class CountingProxy:
    def __init__(self, listeners: dict[str, int], upstream: tuple[str, int] = (HOST, 5432)) -> None:
        self.listeners = listeners
        self.upstream = upstream
        self.ports: dict[str, int] = {}
        self._counts: dict[str, collections.Counter[str]] = {n: collections.Counter() for n in listeners}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                n: {**dict(c), "round_trips": c["Q"] + c["S"] + c["H"], "connections": c["connections"]}
                for n, c in self._counts.items()
            }

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pg-counting-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the counting proxy did not start")

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread:
            self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        servers = []
        for name, port in self.listeners.items():
            server = await asyncio.start_server(
                lambda r, w, name=name: self._session(name, r, w), HOST, port, reuse_address=True
            )
            self.ports[name] = server.sockets[0].getsockname()[1]
            servers.append(server)
        self._ready.set()
        await self._stop.wait()
        for s in servers:
            s.close()

    async def _session(self, name: str, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        try:
            sreader, swriter = await asyncio.open_connection(*self.upstream)
        except OSError:
            cwriter.close()
            return
        with self._lock:
            self._counts[name]["connections"] += 1
        back = asyncio.ensure_future(self._pump(sreader, cwriter))
        try:
            await self._client_to_server(name, creader, cwriter, swriter)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (swriter, cwriter):
                w.close()
            back.cancel()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _client_to_server(
        self, name: str, reader: asyncio.StreamReader, cwriter: asyncio.StreamWriter, swriter: asyncio.StreamWriter
    ) -> None:
        # Startup: length-prefixed messages without a type byte, until the StartupMessage itself.
        while True:
            head = await reader.readexactly(8)
            length, code = struct.unpack("!ii", head)
            rest = await reader.readexactly(length - 8)
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                cwriter.write(b"N")  # no encryption: the client carries on in plain text
                await cwriter.drain()
                continue
            swriter.write(head + rest)
            await swriter.drain()
            break
        counts: collections.Counter[str] = collections.Counter()
        while True:
            head = await reader.readexactly(5)
            kind = chr(head[0])
            (length,) = struct.unpack("!i", head[1:])
            body = await reader.readexactly(length - 4)
            swriter.write(head + body)
            counts[kind] += 1
            if kind in "QSH":
                with self._lock:
                    self._counts[name].update(counts)
                counts.clear()
                await swriter.drain()
            elif kind == "X":
                break
            elif swriter.transport.get_write_buffer_size() > 1 << 16:
                await swriter.drain()

    def __enter__(self) -> CountingProxy:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
