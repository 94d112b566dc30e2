"""Shared pieces of the fault battery: scale, real processes, loopback fault injectors, DB/emulator checks.

Everything here acts on loopback only and every loop is bounded. Processes are started in their own
session (process group) and stopped by that group's id, never by name.

- `Stack`: the gateway as the deployment runs it, `notifygw serve` plus `dramatiq` workers
  (tests.faults.worker_boot), in subprocesses that read their own environment: a Redis namespace of
  their own, and optionally another Redis, another database URL (through a proxy) or another Twilio URL.
- `RedisServer`: a second, throw-away redis-server on a free port, to stop, pause and restart.
- `TcpProxy`: a loopback TCP proxy that forwards, refuses, resets (RST) or holds connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select

from app.core.db import session_factory
from app.notify.models import Attempt, Notification

FULL = os.environ.get("NOTIFYGW_FAULTS_FULL", "") not in ("", "0")
TERMINAL = {"delivered", "read", "failed", "suppressed"}
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def scale(full: int, small: int) -> int:
    """The issue's count under NOTIFYGW_FAULTS_FULL=1, a small one in the normal test run."""
    return full if FULL else small


def report(row: int, title: str, **figures: Any) -> None:
    """Print the row's figures (visible with -s) and append them to $NOTIFYGW_FAULTS_REPORT if set."""
    record = {"row": row, "title": title, "full": FULL, **figures}
    line = json.dumps(record, default=str, sort_keys=False)
    print(f"\nFAULTS row {row}: {line}", flush=True)
    path = os.environ.get("NOTIFYGW_FAULTS_REPORT")
    if path:
        with open(path, "a") as fh:
            fh.write(line + "\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(fn, timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = fn()
        except Exception:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGKILL, timeout: float = 30.0) -> int | None:
    """SIGKILL: the whole process group we started (start_new_session=True), as a crash would. Any other
    signal goes to the leader only, as an orchestrator sends it (dramatiq's main process forwards it to its
    children; a second copy sent straight to a child means "kill now" to dramatiq). Reaps the leader."""
    if proc.poll() is None:
        try:
            if sig == signal.SIGKILL:
                os.killpg(proc.pid, sig)
            else:
                os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(10)


# ---------------------------------------------------------------------------------------------------
# A second Redis


class RedisServer:
    """redis-server on a free loopback port, no persistence: stop() loses everything, as a real restart may."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        import redis

        _wait(lambda: redis.Redis(port=self.port, socket_timeout=0.5).ping(), 15, "redis-server to start")

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, signal.SIGKILL)
            self.proc = None

    def pause(self) -> None:  # accepted by the kernel, never answered: the hung-Redis case
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGCONT)

    def client(self) -> Any:
        import redis

        return redis.Redis(port=self.port, socket_timeout=2)


# ---------------------------------------------------------------------------------------------------
# A misbehaving loopback TCP proxy


def _rst(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    """127.0.0.1:port -> 127.0.0.1:target.

    mode "pass": forward; "reset": read the request, then close with RST; "slow": read the request and
    answer nothing for `slow_seconds` (or until the client gives up); "alternate": reset, slow, reset, ...
    down() closes the listener (connections refused) and resets every open connection; up() reopens.
    """

    def __init__(self, target_port: int, mode: str = "pass", slow_seconds: float = 20.0) -> None:
        self.target_port = target_port
        self.mode = mode
        self.slow_seconds = slow_seconds
        self.port = free_port()
        self.url_host = f"127.0.0.1:{self.port}"
        self.accepted: Counter[str] = Counter()  # connections per mode
        self.held_seconds: list[float] = []  # how long each "slow" client waited before giving up
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._turn = 0

    def start(self) -> TcpProxy:
        self.up()
        return self

    def up(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(256)
        self._listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True, name=f"proxy-{self.port}").start()

    def down(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            open_now, self._open = list(self._open), set()
        for sock in open_now:
            _rst(sock)

    stop = down

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            mode = self.mode
            if mode == "alternate":
                mode, self._turn = ("reset", "slow")[self._turn % 2], self._turn + 1
            with self._lock:
                self.accepted[mode] += 1
                self._open.add(client)
            threading.Thread(target=self._handle, args=(client, mode), daemon=True).start()

    def _forget(self, *socks: socket.socket) -> None:
        with self._lock:
            for s in socks:
                self._open.discard(s)

    def _handle(self, client: socket.socket, mode: str) -> None:
        try:
            if mode == "reset":
                client.settimeout(5)
                try:
                    client.recv(65536)  # the request is sent, then the connection is reset under it
                except OSError:
                    pass
                self._forget(client)
                _rst(client)
            elif mode == "slow":
                started = time.monotonic()
                client.settimeout(0.5)
                while time.monotonic() - started < self.slow_seconds:
                    try:
                        if client.recv(65536) == b"":
                            break  # the client timed out and closed
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                self.held_seconds.append(time.monotonic() - started)
                self._forget(client)
                _rst(client)
            else:
                self._pipe(client)
        except Exception:
            self._forget(client)
            _rst(client)

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            self._forget(client)
            _rst(client)
            return
        upstream.settimeout(None)
        client.settimeout(None)
        with self._lock:
            self._open.add(upstream)
        peer = {client: upstream, upstream: client}
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ)
        sel.register(upstream, selectors.EVENT_READ)
        try:
            while True:
                for key, _ in sel.select(timeout=1.0):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    peer[key.fileobj].sendall(data)  # type: ignore[index]
                with self._lock:
                    if client not in self._open:
                        return  # reset by down()
        except OSError:
            return
        finally:
            sel.close()
            self._forget(client, upstream)
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.close()


# ---------------------------------------------------------------------------------------------------
# The gateway as separate processes

WORKER_DEFAULTS = {
    "NOTIFYGW_FAULTS_MAINTENANCE_EVERY": "1",
    "NOTIFYGW_FAULTS_SWEEP_AFTER": "3",
    "NOTIFYGW_FAULTS_SENDING_GRACE": "8",
    "NOTIFYGW_FAULTS_RECONCILE_AFTER": "20",
    "NOTIFYGW_FAULTS_BACKOFF": "0.2",
    "NOTIFYGW_FAULTS_CHECK_DELAY": "1",
}


class Stack:
    """`notifygw serve` and dramatiq workers in subprocesses, on a Redis namespace of their own.

    Status callbacks reach this stack's API (NOTIFYGW_PUBLIC_BASE_URL), and its jobs stay in its own
    namespace, so the in-process test worker never touches them.
    """

    def __init__(self, workdir: Path, name: str, **env: str) -> None:
        from tests.conftest import TEST_DB_NAME

        self.workdir = workdir
        self.namespace = f"{TEST_DB_NAME}-{name}"
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.env = {
            **os.environ,
            "NOTIFYGW_REDIS_NAMESPACE": self.namespace,
            "NOTIFYGW_PUBLIC_BASE_URL": self.api_url,
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.api: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self._logs: list[Path] = []

    def _log(self, what: str) -> Any:
        path = self.workdir / f"{what}-{len(self._logs)}.log"
        self._logs.append(path)
        return open(path, "wb")

    def start_api(self, wait: float = 60.0, **env: str) -> subprocess.Popen:
        with self._log("api") as log:
            self.api = subprocess.Popen(
                [str(BIN / "notifygw"), "serve", "--host", "127.0.0.1", "--port", str(self.api_port)],
                env={**self.env, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=REPO,
            )
        _wait(lambda: httpx.get(f"{self.api_url}/healthz", timeout=1).status_code == 200, wait, "the API to start")
        return self.api

    def stop_api(self, sig: int = signal.SIGTERM) -> None:
        if self.api is not None:
            stop_group(self.api, sig)
            self.api = None

    def start_worker(self, threads: int = 8, **env: str) -> subprocess.Popen:
        with self._log("worker") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dramatiq",
                    "tests.faults.worker_boot",
                    "--processes",
                    "1",
                    "--threads",
                    str(threads),
                ],
                env={**self.env, **WORKER_DEFAULTS, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=REPO,
            )
        self.workers.append(proc)
        return proc

    def stop_worker(self, proc: subprocess.Popen, sig: int = signal.SIGKILL, timeout: float = 60.0) -> int | None:
        code = stop_group(proc, sig, timeout)
        if proc in self.workers:
            self.workers.remove(proc)
        return code

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self._logs if p.exists())

    def close(self) -> None:
        for proc in list(self.workers):
            self.stop_worker(proc, signal.SIGKILL)
        self.stop_api(signal.SIGKILL)
        try:
            import redis

            client = redis.Redis.from_url(self.env["NOTIFYGW_REDIS_URL"], socket_timeout=2)
            for key in client.scan_iter(match=f"{self.namespace}*", count=1000):
                client.delete(key)
            client.close()
        except Exception:
            pass


# ---------------------------------------------------------------------------------------------------
# Requests


def notification_body(i: int, **extra: Any) -> dict[str, Any]:
    body = {
        "to": {"phone": f"+1415{5550000 + i:07d}"[:12], "email": f"user{i}@example.com"},
        "template": "order_shipped",
        "variables": {"name": "Ava", "order": str(10000 + i)},
    }
    body.update(extra)
    return body


async def post_many(
    base_url: str,
    headers: dict[str, str],
    bodies: Iterable[dict[str, Any]],
    *,
    concurrency: int = 8,
    timeout: float = 30.0,
) -> list[str]:
    """POST every body, retrying a 429 after its Retry-After (bounded); the ids in order."""
    sem = asyncio.Semaphore(concurrency)

    async def one(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
        async with sem:
            for _ in range(30):
                r = await http.post("/v1/notifications", json=body, headers=headers)
                if r.status_code == 429:
                    await asyncio.sleep(float(r.headers.get("retry-after", "1")))
                    continue
                assert r.status_code == 202, r.text
                return r.json()["id"]
            raise AssertionError("still rate limited after 30 tries")

    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as http:
        return list(await asyncio.gather(*(one(http, b) for b in bodies)))


# ---------------------------------------------------------------------------------------------------
# What the database and the emulator say


async def statuses(ids: list[str]) -> Counter[str]:
    async with session_factory()() as s:
        rows = (await s.execute(select(Notification.status).where(Notification.id.in_(ids)))).scalars().all()
    return Counter(rows)


async def wait_terminal(ids: list[str], timeout: float, emulator: Any = None, every: float = 0.5) -> Counter[str]:
    """Poll until every notification is terminal (and the emulator has no callback in flight); bounded."""
    deadline = time.monotonic() + timeout
    while True:
        counts = await statuses(ids)
        done = sum(v for k, v in counts.items() if k in TERMINAL)
        if done == len(ids) and (emulator is None or emulator.state.pending == 0):
            return counts
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(ids) - done} of {len(ids)} not terminal after {timeout:g}s: {dict(counts)}; {await diagnose()}"
            )
        await asyncio.sleep(every)


async def diagnose() -> str:
    """Attempt and outbox states, for a failure message."""
    from sqlalchemy import func

    from app.outbox.models import OutboxItem

    async with session_factory()() as s:
        attempts = (
            await s.execute(
                select(Attempt.channel, Attempt.status, func.count()).group_by(Attempt.channel, Attempt.status)
            )
        ).all()
        outbox = (
            await s.execute(
                select(OutboxItem.kind, OutboxItem.state, func.count()).group_by(OutboxItem.kind, OutboxItem.state)
            )
        ).all()
    return f"attempts {[tuple(r) for r in attempts]}, outbox {[tuple(r) for r in outbox]}"


def sends_per_notification(emulator: Any, account_sid: str) -> Counter[str]:
    """WhatsApp messages the emulator created, per notification id (from the StatusCallback URL)."""
    per: Counter[str] = Counter()
    for message in emulator.messages(account_sid=account_sid):
        query = parse_qs(urlsplit(message["status_callback"] or "").query)
        per[query["n"][0]] += 1
    return per


async def flagged_notifications() -> set[str]:
    async with session_factory()() as s:
        return {
            str(n)
            for n in (
                await s.execute(select(Attempt.notification_id).where(Attempt.possible_duplicate.is_(True)))
            ).scalars()
        }


async def sending_without_sid() -> set[tuple[str, Any]]:
    """(attempt id, sending_started_at) of every send cut off between `sending` and the SID."""
    async with session_factory()() as s:
        return {
            (str(a), t)
            for a, t in (
                await s.execute(
                    select(Attempt.id, Attempt.sending_started_at).where(
                        Attempt.status == "sending", Attempt.provider_message_id.is_(None)
                    )
                )
            ).all()
        }


async def until_sending(after: Any = None, timeout: float = 60.0, required: bool = True) -> bool:
    """Until some attempt is `sending` (one that started after `after`, if given): a worker is mid-send.

    False at the deadline when not `required` (the worker may have run out of work)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stmt = select(Attempt.id).where(Attempt.status == "sending")
        if after is not None:
            stmt = stmt.where(Attempt.sending_started_at > after)
        async with session_factory()() as s:
            if (await s.execute(stmt.limit(1))).first():
                return True
        await asyncio.sleep(0.02)
    if required:
        raise AssertionError("no worker started sending")
    return False


async def unsent(ids: list[str]) -> int:
    """Notifications with no WhatsApp attempt holding a SID yet."""
    async with session_factory()() as s:
        sent = set(
            (
                await s.execute(
                    select(Attempt.notification_id).where(
                        Attempt.channel == "whatsapp", Attempt.provider_message_id.is_not(None)
                    )
                )
            ).scalars()
        )
    return len({*ids} - {str(x) for x in sent})


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


async def battery_tenant(client: Any, emulator: Any, gateway: str, **options: Any) -> Any:
    """A wired tenant whose senders have no messaging-limit tier. The full rows send to 1,000 new people
    from one sender, four times the default tier (250 a day, docs/tiers.md), and they judge the delivery
    guarantees, not the tier: at the default, 750 of them went by email and the rows failed."""
    from tests.support.gateway import wired_tenant

    return await wired_tenant(client, emulator, gateway, tier="unlimited", **options)
