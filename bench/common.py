"""Shared machinery for the notifygw benchmarks (issue 7 section 1): real processes, a fresh database,
tenants wired through the public API, load generators, and CPU/memory read from /proc.

Everything here talks to 127.0.0.1 only, every wait and every load run is bounded, and every
process started here is started in its own session (process group) and killed with its whole
group when the benchmark ends, fails or is interrupted.

    with Stack("webhook", worker=False) as stack:
        tenant = stack.wire_tenant("bench")
        ...

A `Stack` creates `notifygw_bench_<rand>`, migrates it with `notifygw migrate`, starts
`notifygw emulator`, `notifygw serve` and (optionally) `notifygw worker` with a Redis namespace of
their own on database 13, and on exit stops them, drops the database and deletes the namespace.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PY = sys.executable
NOTIFYGW = [str(Path(PY).parent / "notifygw")] if (Path(PY).parent / "notifygw").exists() else [PY, "-m", "app.cli"]
HOST = "127.0.0.1"
PG_ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN_DSN", f"postgresql://postgres@{HOST}:5432/postgres")
REDIS_URL = f"redis://{HOST}:6379/13"
HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MiB = 2**20


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _loopback_only(url: str) -> str:
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname
    if host != HOST:
        raise RuntimeError(f"refusing to contact {url!r}: benchmarks only talk to {HOST}")
    return url


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- processes


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path
    port: int | None = None

    @property
    def pgid(self) -> int:
        return self.popen.pid  # started with start_new_session: its pid is its process group id

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


_STARTED: list[Proc] = []


def _kill_group(proc: Proc, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pgid, sig)


def spawn(
    name: str, argv: Sequence[str], env: dict[str, str], logdir: Path, *, port: int | None = None, cwd: Path = ROOT
) -> Proc:
    log_path = logdir / f"{name}.log"
    with open(log_path, "ab") as fh:
        popen = subprocess.Popen(
            list(argv),
            cwd=str(cwd),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc = Proc(name, popen, log_path, port)
    _STARTED.append(proc)
    return proc


def stop(proc: Proc, grace: float = 10.0) -> float:
    """SIGTERM the whole group, wait up to `grace` s, then SIGKILL whatever of it is left."""
    t0 = time.monotonic()
    if proc.alive():
        _kill_group(proc, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=grace)
    took = time.monotonic() - t0
    deadline = time.monotonic() + 3.0  # children (dramatiq's forks) may exit just after their parent
    while group_pids(proc.pgid, zombies=False) and time.monotonic() < deadline:
        time.sleep(0.05)
    _kill_group(proc, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.popen.wait(timeout=5)
    if proc in _STARTED:
        _STARTED.remove(proc)
    return took


def cleanup_processes() -> None:
    while _STARTED:
        proc = _STARTED.pop()
        _kill_group(proc, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=5)


atexit.register(cleanup_processes)


def install_signal_handlers() -> None:
    """Ctrl-C raises KeyboardInterrupt, SIGTERM/SIGHUP exit: either way the finally blocks and atexit run."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))


# --------------------------------------------------------------------------- /proc


def _stat(pid: int) -> tuple[str, list[str]] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            raw = fh.read()
    except OSError:
        return None
    head, _, rest = raw.rpartition(")")
    return head.partition("(")[2], rest.split()


def group_pids(pgid: int, zombies: bool = True) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) and int(st[1][2]) == pgid and (zombies or st[1][0] != "Z"):
            out.append(int(entry))
    return out


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every process of the group (all threads, and reaped children)."""
    total = 0
    for pid in group_pids(pgid):
        if st := _stat(pid):
            f = st[1]
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / HZ


def comm_cpu_seconds(prefixes: tuple[str, ...]) -> float:
    """CPU of every process on the machine whose name starts with one of `prefixes` (postgres, redis)."""
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) and st[0].startswith(prefixes):
            total += int(st[1][11]) + int(st[1][12])
    return total / HZ


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as fh:
        parts = [int(x) for x in fh.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return (sum(parts[:8]) - idle) / HZ, sum(parts[:8]) / HZ


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Mem:
    rss_mib: float = 0.0  # sum of RSS over the group (shared pages of forks counted in each)
    pss_mib: float = 0.0  # sum of PSS (shared pages split between the processes sharing them)
    max_proc_mib: float = 0.0  # the largest single process
    processes: int = 0

    def peak(self, other: Mem) -> Mem:
        return Mem(
            max(self.rss_mib, other.rss_mib),
            max(self.pss_mib, other.pss_mib),
            max(self.max_proc_mib, other.max_proc_mib),
            max(self.processes, other.processes),
        )


def group_mem(pgid: int, pss: bool = True) -> Mem:
    m = Mem()
    for pid in group_pids(pgid, zombies=False):
        try:
            with open(f"/proc/{pid}/statm") as fh:
                rss = int(fh.read().split()[1]) * PAGE / MiB
        except OSError:
            continue
        m.rss_mib += rss
        m.max_proc_mib = max(m.max_proc_mib, rss)
        m.processes += 1
        if pss:
            m.pss_mib += _pss_kib(pid) / 1024
    return m


class MemSampler:
    """Samples the memory of some process groups every `every` seconds in a thread; keeps the peak."""

    def __init__(self, procs: dict[str, Proc], every: float = 0.5) -> None:
        self.procs = procs
        self.every = every
        self.peaks: dict[str, Mem] = {name: Mem() for name in procs}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> dict[str, Mem]:
        return {name: group_mem(p.pgid) for name, p in self.procs.items()}

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, m in self.sample().items():
                self.peaks[name] = self.peaks[name].peak(m)
            self._stop.wait(self.every)

    def __enter__(self) -> MemSampler:
        self._thread = threading.Thread(target=self._run, name="mem-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)


class CpuMeter:
    """CPU seconds used by some process groups (and postgres, redis, the machine) between two points."""

    def __init__(self, procs: dict[str, Proc]) -> None:
        self.procs = procs

    def read(self) -> dict[str, float]:
        out = {name: group_cpu_seconds(p.pgid) for name, p in self.procs.items()}
        out["postgres (all DBs)"] = comm_cpu_seconds(("postgres",))
        out["redis-server"] = comm_cpu_seconds(("redis-server",))
        busy, total = machine_cpu_seconds()
        out["machine busy"], out["machine total"] = busy, total
        return out

    @staticmethod
    def delta(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
        return {k: b[k] - a.get(k, 0.0) for k in b}


# --------------------------------------------------------------------------- database and redis


def _run_async(coro: Any) -> Any:
    return asyncio.run(coro)


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class BenchDatabase:
    def __init__(self, rand: str) -> None:
        self.name = f"notifygw_bench_{rand}"
        self.dsn = f"postgresql://postgres@{HOST}:5432/{self.name}"
        self.url = f"postgresql+asyncpg://postgres@{HOST}:5432/{self.name}"
        self.created = False

    def create(self) -> None:
        _run_async(_pg_admin(f'CREATE DATABASE "{self.name}"'))
        self.created = True

    def drop(self) -> None:
        if self.created:
            _run_async(_pg_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            self.created = False

    def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        async def go() -> list[dict[str, Any]]:
            import asyncpg

            conn = await asyncpg.connect(self.dsn, timeout=10)
            try:
                return [dict(r) for r in await conn.fetch(sql, *args, timeout=30)]
            finally:
                await conn.close()

        return _run_async(go())

    def scalar(self, sql: str, *args: Any) -> Any:
        rows = self.fetch(sql, *args)
        return next(iter(rows[0].values())) if rows else None

    def execute(self, sql: str) -> None:
        async def go() -> None:
            import asyncpg

            conn = await asyncpg.connect(self.dsn, timeout=10)
            try:
                await conn.execute(sql, timeout=30)
            finally:
                await conn.close()

        _run_async(go())


def redis_delete_namespace(prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        n = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                n += client.delete(*batch)
                batch.clear()
        if batch:
            n += client.delete(*batch)
        return n
    finally:
        client.close()


# --------------------------------------------------------------------------- http helpers (setup only)


def http_client(base_url: str, timeout: float = 30.0):
    import httpx

    return httpx.Client(base_url=_loopback_only(base_url), trust_env=False, timeout=timeout)


def wait_http(proc: Proc, url: str, *, ok: Callable[[int], bool] = lambda s: s == 200, timeout: float = 60.0) -> None:
    import httpx

    _loopback_only(url)
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode} before answering:\n{proc.tail()}")
        try:
            r = httpx.get(url, timeout=2.0, trust_env=False)
            if ok(r.status_code):
                return
            last = f"HTTP {r.status_code} {r.text[:200]}"
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} not ready at {url} after {timeout:.0f} s (last: {last}):\n{proc.tail()}")


# --------------------------------------------------------------------------- the stack


@dataclass
class Tenant:
    id: str
    key: str
    account: dict[str, Any]
    sendgrid: dict[str, Any]
    content_sid: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


TEMPLATE_KEY = "order_shipped"


class Stack:
    """A fresh database, the emulator, the API and (optionally) the worker; all torn down on exit."""

    def __init__(
        self,
        label: str,
        *,
        worker: bool = False,
        worker_processes: int = 2,
        worker_threads: int = 8,
        api_workers: int = 1,
        keep_logs: bool = False,
        api_cmd: Sequence[str] | None = None,
        worker_cmd: Sequence[str] | None = None,
        extra_env: dict[str, str] | None = None,
        emulator_cmd: Sequence[str] | None = None,
        emulator_env: dict[str, str] | None = None,
    ) -> None:
        self.label = label
        self.api_cmd = api_cmd  # replaces `notifygw serve ...` (the port is appended); for bench/sql_trace.py
        self.worker_cmd = worker_cmd  # replaces `notifygw worker ...`
        self.emulator_cmd = emulator_cmd  # replaces `notifygw emulator ...` (the port is appended)
        self.emulator_env = emulator_env or {}
        self.extra_env = extra_env or {}
        self.api_env: dict[str, str] = {}  # on top of env(), for the API only (bench/sql_trace.py's proxy)
        self.worker_env: dict[str, str] = {}  # the same, for the worker only
        self.want_worker = worker
        self.worker_processes = worker_processes
        self.worker_threads = worker_threads
        self.api_workers = api_workers
        self.keep_logs = keep_logs
        self.rand = secrets.token_hex(4)
        self.namespace = f"bench_{self.rand}"
        self.db = BenchDatabase(self.rand)
        self.tmp = Path(tempfile.mkdtemp(prefix=f"notifygw-bench-{label}-"))
        self.procs: dict[str, Proc] = {}
        self.operator_token = "op_bench_" + secrets.token_urlsafe(24)
        self.api_port = free_port()
        self.emulator_port = free_port()
        self._failed = False
        self._env: dict[str, str] | None = None

    # -- environment
    def env(self) -> dict[str, str]:
        if self._env is None:
            base = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFYGW_")}
            keys = subprocess.run(
                [*NOTIFYGW, "keys", "generate-encryption-key", "--id", "k1"],
                cwd=str(ROOT),
                env=base,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout.strip()
            self._env = {
                **base,
                "NOTIFYGW_DATABASE_URL": self.db.url,
                "NOTIFYGW_REDIS_URL": REDIS_URL,
                "NOTIFYGW_REDIS_NAMESPACE": self.namespace,
                "NOTIFYGW_OPERATOR_TOKEN": self.operator_token,
                "NOTIFYGW_ENCRYPTION_KEYS": keys.splitlines()[-1].strip(),
                "NOTIFYGW_PEPPER": secrets.token_urlsafe(32),
                "NOTIFYGW_PUBLIC_BASE_URL": self.api_url,
                "NOTIFYGW_TWILIO_API_BASE_URL": self.emulator_url,
                "NOTIFYGW_SENDGRID_API_BASE_URL": self.emulator_url,
                "NOTIFYGW_LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
                **self.extra_env,
            }
        return self._env

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    @property
    def emulator_url(self) -> str:
        return f"http://{HOST}:{self.emulator_port}"

    @property
    def operator(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.operator_token}"}

    # -- lifecycle
    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self._failed = True
            self.close()
            raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self._failed = True
            if isinstance(exc, Exception):
                for p in self.procs.values():
                    sys.stderr.write(f"--- {p.name} log tail ({p.log_path}) ---\n{p.tail(2000)}\n")
        self.close()

    def start(self) -> None:
        log(f"[{self.label}] database {self.db.name}, redis {REDIS_URL} namespace {self.namespace}, logs {self.tmp}")
        self.db.create()
        env = self.env()
        with open(self.tmp / "migrate.log", "wb") as migrate_log:
            subprocess.run(
                [*NOTIFYGW, "migrate"],
                cwd=str(ROOT),
                env=env,
                check=True,
                timeout=180,
                stdout=migrate_log,
                stderr=subprocess.STDOUT,
            )
        emulator = (
            [*self.emulator_cmd, str(self.emulator_port)]
            if self.emulator_cmd
            else [*NOTIFYGW, "emulator", "--host", HOST, "--port", str(self.emulator_port)]
        )
        self.procs["emulator"] = spawn(
            "emulator", emulator, {**env, **self.emulator_env}, self.tmp, port=self.emulator_port
        )
        api = (
            [*self.api_cmd, str(self.api_port)]
            if self.api_cmd
            else [*NOTIFYGW, "serve", "--host", HOST, "--port", str(self.api_port), "--workers", str(self.api_workers)]
        )
        self.procs["api"] = spawn("api", api, {**env, **self.api_env}, self.tmp, port=self.api_port)
        wait_http(self.procs["emulator"], f"{self.emulator_url}/_emulator/status")
        wait_http(self.procs["api"], f"{self.api_url}/readyz")
        if self.want_worker:
            self.start_worker()

    def start_worker(self) -> Proc:
        cmd = list(self.worker_cmd) if self.worker_cmd else [*NOTIFYGW, "worker"]
        proc = spawn(
            "worker",
            [*cmd, "--processes", str(self.worker_processes), "--threads", str(self.worker_threads)],
            {**self.env(), **self.worker_env},
            self.tmp,
        )
        self.procs["worker"] = proc
        # Ready when every forked worker process is up (parent + N children), or give up after 60 s.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"worker exited with {proc.popen.returncode}:\n{proc.tail()}")
            if len(group_pids(proc.pgid, zombies=False)) >= self.worker_processes + 1:
                break
            time.sleep(0.2)
        time.sleep(2.0)  # the forks import every actor and connect before consuming
        return proc

    def spawn_baseline(self, name: str, target: str, extra_env: dict[str, str]) -> Proc:
        """A baseline app under uvicorn with exactly the settings `notifygw serve` uses."""
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("NOTIFYGW_")},
            **extra_env,
            "BENCH_BASE_URL": f"http://{HOST}:{port}",
            "PYTHONUNBUFFERED": "1",
        }
        proc = spawn(name, [PY, str(HERE / "common.py"), "_serve", target, str(port)], env, self.tmp, port=port)
        self.procs[name] = proc
        wait_http(proc, f"http://{HOST}:{port}/healthz")
        return proc

    def spawn_patched(self, patches: str, name: str = "patched") -> Proc:
        """A second API on the same database, with bench/_patched.py's what-if fixes applied."""
        port = free_port()
        env = {**self.env(), "NOTIFYGW_PUBLIC_BASE_URL": f"http://{HOST}:{port}", "BENCH_PATCHES": patches}
        proc = spawn(name, [PY, str(HERE / "_patched.py"), "serve", str(port)], env, self.tmp, port=port)
        self.procs[name] = proc
        wait_http(proc, f"http://{HOST}:{port}/readyz")
        return proc

    def close(self) -> None:
        for name in list(self.procs)[::-1]:
            stop(self.procs.pop(name))
        try:
            self.db.drop()
        except Exception as exc:
            sys.stderr.write(f"could not drop {self.db.name}: {exc}\n")
        try:
            redis_delete_namespace(f"{self.namespace}:")
            redis_delete_namespace(f"{self.namespace}_baseline:")
        except Exception as exc:
            sys.stderr.write(f"could not clean redis namespace {self.namespace}: {exc}\n")
        if self._failed or self.keep_logs:
            log(f"[{self.label}] logs kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- tenants, through the public API only
    def wire_tenant(
        self,
        name: str,
        *,
        api_rate: int = 100_000,
        sender_rate: float | None = 1000.0,
        messaging_service: bool = False,
    ) -> Tenant:
        """`sender_rate=None` leaves the sender's pacing at the product's default."""
        with http_client(self.api_url) as api, http_client(self.emulator_url) as emu:

            def ok(r: Any, *codes: int) -> Any:
                if r.status_code not in (codes or (200, 201)):
                    raise RuntimeError(f"{r.request.method} {r.request.url.path} -> {r.status_code}: {r.text[:500]}")
                return r.json() if r.content else None

            tenant = ok(api.post("/operator/v1/tenants", json={"name": name}, headers=self.operator))
            tid = tenant["id"]
            ok(api.patch(f"/operator/v1/tenants/{tid}", json={"api_rate_per_second": api_rate}, headers=self.operator))
            key = ok(
                api.post(
                    f"/operator/v1/tenants/{tid}/api-keys",
                    headers=self.operator,
                    json={"name": "bench", "scopes": ["admin", "notifications:send", "notifications:read"]},
                )
            )["key"]
            auth = {"Authorization": f"Bearer {key}"}
            account = ok(
                emu.post(
                    "/_emulator/twilio/accounts",
                    json={"inbound_url": f"{self.api_url}/webhooks/twilio/inbound", "friendly_name": name},
                )
            )
            twilio = {
                "account_sid": account["account_sid"],
                "auth_token": account["auth_token"],
                "api_key_sid": account["api_key_sid"],
                "api_key_secret": account["api_key_secret"],
                "whatsapp_from": account["whatsapp_from"],
            }
            if messaging_service:
                twilio["messaging_service_sid"] = account["messaging_service_sid"]
            ok(api.put("/v1/providers/twilio", json=twilio, headers=auth))
            sg = ok(
                emu.post(
                    "/_emulator/sendgrid/keys", json={"event_webhook_url": f"{self.api_url}/webhooks/sendgrid/{tid}"}
                )
            )
            ok(
                api.put(
                    "/v1/providers/sendgrid",
                    headers=auth,
                    json={
                        "api_key": sg["api_key"],
                        "from_email": "notify@example.com",
                        "from_name": "Bench",
                        "event_webhook_public_key": sg["event_webhook_public_key"],
                    },
                )
            )
            content_sid = ok(
                emu.post(
                    "/_emulator/twilio/templates", json={"account_sid": account["account_sid"], "variables": ["1", "2"]}
                )
            )["content_sid"]
            ok(
                api.post(
                    "/v1/templates",
                    headers=auth,
                    json={
                        "key": TEMPLATE_KEY,
                        "default_locale": "en",
                        "locales": {
                            "en": {
                                "whatsapp": {"content_sid": content_sid, "variables": ["name", "order"]},
                                "email": {
                                    "subject": "Order {{order}} shipped",
                                    "text": "Hi {{name}}, order {{order}} is on its way.",
                                    "html": "<p>Hi {{name}}</p>",
                                },
                            }
                        },
                    },
                )
            )
            ok(
                api.put(
                    "/v1/routing",
                    headers=auth,
                    # Unlimited tier: a bench sends to thousands of new people per sender, past the default
                    # 250 a day (docs/tiers.md), and would measure the cap instead of the pipeline.
                    json={
                        "require_whatsapp_opt_in": False,
                        "whatsapp": {"limits": {"default_tier": "unlimited"}}
                        | ({"sender_rate_per_second": sender_rate} if sender_rate is not None else {}),
                    },
                )
            )
        # The auth token must be sealed at rest, as in production.
        sealed = self.db.scalar(
            "SELECT auth_token_enc FROM twilio_credentials WHERE account_sid = $1", account["account_sid"]
        )
        if not sealed or account["auth_token"] in sealed:
            raise RuntimeError("the Twilio auth token is not stored encrypted")
        return Tenant(tid, key, account, sg, content_sid)

    def create_baseline_tables(self) -> None:
        self.db.execute("""
            CREATE TABLE IF NOT EXISTS bench_baseline_events (
                id uuid PRIMARY KEY, account_sid text NOT NULL, message_sid text NOT NULL, status text NOT NULL,
                payload jsonb NOT NULL, received_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE IF NOT EXISTS bench_baseline_notifications (
                id uuid PRIMARY KEY, tenant text NOT NULL, recipient jsonb NOT NULL, template text,
                variables jsonb NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
        """)


# --------------------------------------------------------------------------- request files and load


def write_requests(path: Path, rows: Iterable[tuple[str, Sequence[str], str]]) -> int:
    """One request per line: `path<TAB>header value<TAB>...<TAB>body` (no tab or newline inside)."""
    n = 0
    with open(path, "w") as fh:
        for req_path, header_values, body in rows:
            fh.write("\t".join((req_path, *header_values, body)))
            fh.write("\n")
            n += 1
    return n


WRK_LUA = r"""
-- Cycles through pre-built requests, one per line of a file: path \t header values... \t body.
-- args: <file> <comma-separated per-request header names>; static headers come from wrk.headers.
local reqs, n, i = {}, 0, 0
local static = %(static)s

function init(args)
  local names = {}
  for name in string.gmatch(args[2] or "", "[^,]+") do names[#names + 1] = name end
  for line in io.lines(args[1]) do
    local fields = {}
    for f in string.gmatch(line, "([^\t]*)\t?") do fields[#fields + 1] = f end
    local headers = {}
    for k, v in pairs(static) do headers[k] = v end
    headers["Host"] = wrk.headers["Host"]
    for j, name in ipairs(names) do headers[name] = fields[1 + j] end
    local body = fields[#names + 2]
    n = n + 1
    reqs[n] = wrk.format("POST", fields[1], headers, body)
  end
end

function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end

done = function(summary, latency, requests)
  io.write(string.format(
    'BENCH {"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d,' ..
    '"err_connect":%%d,"err_read":%%d,"err_write":%%d,"err_status":%%d,"err_timeout":%%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout))
end
"""


def _lua_table(d: dict[str, str]) -> str:
    return "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in d.items()) + "}"


@dataclass
class LoadResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    lines: int = 0
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def wrapped(self) -> int:
        """Requests beyond the pre-built ones (they repeat earlier requests: duplicates)."""
        return max(0, self.requests - self.lines) if self.lines else 0


def run_wrk(
    base_url: str,
    data: Path,
    lines: int,
    *,
    per_request_headers: Sequence[str] = (),
    static_headers: dict[str, str] | None = None,
    seconds: float = 10.0,
    connections: int = 32,
    threads: int = 1,
    tmp: Path,
) -> LoadResult:
    if not shutil.which("wrk"):
        raise RuntimeError("wrk not found (apt-get install -y wrk)")
    _loopback_only(base_url)
    lua = tmp / "requests.lua"
    lua.write_text(WRK_LUA % {"static": _lua_table(static_headers or {})})
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(lua),
        base_url,
        "--",
        str(data),
        ",".join(per_request_headers),
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, start_new_session=True
    )
    holder = Proc("wrk", proc, tmp / "wrk.log")
    _STARTED.append(holder)
    try:
        out, err = proc.communicate(timeout=seconds + 120)  # loading the file takes a moment; bounded anyway
    except subprocess.TimeoutExpired:
        _kill_group(holder)
        raise RuntimeError("wrk did not finish in time") from None
    finally:
        if holder in _STARTED:
            _STARTED.remove(holder)
    for line in out.splitlines():
        if line.startswith("BENCH "):
            r = json.loads(line[6:])
            secs = r["duration_us"] / 1e6
            errors = sum(v for k, v in r.items() if k.startswith("err_"))
            return LoadResult(
                r["requests"],
                secs,
                r["requests"] / secs,
                r["p50_us"] / 1000,
                r["p90_us"] / 1000,
                r["p99_us"] / 1000,
                r["max_us"] / 1000,
                errors,
                lines,
                r,
            )
    raise RuntimeError(f"wrk printed no result (rc={proc.returncode}): {out[-800:]} {err[-800:]}")


def run_loadgen(
    base_url: str,
    data: Path,
    *,
    per_request_headers: Sequence[str] = (),
    static_headers: dict[str, str] | None = None,
    connections: int = 32,
    max_seconds: float = 600.0,
    rate: float = 0.0,
    timeout: float = 60.0,
    tmp: Path,
) -> dict[str, Any]:
    """Send every request of `data` exactly once (bench/loadgen.py in its own process).

    `rate` > 0: open loop at that many requests/s, latency from each request's scheduled time."""
    _loopback_only(base_url)
    cmd = [
        PY,
        str(HERE / "loadgen.py"),
        base_url,
        str(data),
        "--connections",
        str(connections),
        "--headers",
        ",".join(per_request_headers),
        "--static",
        json.dumps(static_headers or {}),
        "--max-seconds",
        str(max_seconds),
        "--rate",
        str(rate),
        "--timeout",
        str(timeout),
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=str(ROOT),
    )
    holder = Proc("loadgen", proc, tmp / "loadgen.log")
    _STARTED.append(holder)
    try:
        out, err = proc.communicate(timeout=max_seconds + 60)
    except subprocess.TimeoutExpired:
        _kill_group(holder)
        raise RuntimeError("loadgen did not finish in time") from None
    finally:
        if holder in _STARTED:
            _STARTED.remove(holder)
    for line in out.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    raise RuntimeError(f"loadgen printed no result (rc={proc.returncode}): {out[-800:]} {err[-1500:]}")


class BackgroundLoad:
    """run_loadgen in a thread: `done()` without blocking, `result()` to wait for the figures."""

    def __init__(self, **kwargs: Any) -> None:
        self._box: dict[str, Any] = {}
        self._max = kwargs.get("max_seconds", 600.0)
        self._thread = threading.Thread(target=self._go, kwargs=kwargs, name="loadgen", daemon=True)
        self._thread.start()

    def _go(self, **kwargs: Any) -> None:
        try:
            self._box["result"] = run_loadgen(**kwargs)
        except BaseException as exc:
            self._box["error"] = exc

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> dict[str, Any]:
        self._thread.join(self._max + 90)
        if "error" in self._box:
            raise self._box["error"]
        if "result" not in self._box:
            raise RuntimeError("loadgen thread did not finish")
        return self._box["result"]


def start_loadgen(
    base_url: str,
    data: Path,
    *,
    per_request_headers: Sequence[str] = (),
    static_headers: dict[str, str] | None = None,
    connections: int = 32,
    max_seconds: float = 600.0,
    rate: float = 0.0,
    tmp: Path,
) -> BackgroundLoad:
    """Like run_loadgen, but returns at once."""
    return BackgroundLoad(
        base_url=base_url,
        data=data,
        per_request_headers=per_request_headers,
        static_headers=static_headers,
        connections=connections,
        max_seconds=max_seconds,
        rate=rate,
        tmp=tmp,
    )


# --------------------------------------------------------------------------- serving a baseline


def serve_baseline(target: str, port: int) -> None:
    """Exactly `notifygw serve`'s uvicorn settings (app/cli.py), one worker."""
    import uvicorn

    uvicorn.run(
        target,
        factory=True,
        host=HOST,
        port=port,
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        proxy_headers=False,
    )


# --------------------------------------------------------------------------- reporting


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kib = 0
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem_kib = int(line.split()[1])
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    vers = {"python": platform.python_version()}
    for pkg in ("litestar", "uvicorn", "uvloop", "httptools", "sqlalchemy", "asyncpg", "dramatiq", "redis"):
        try:
            vers[pkg] = version(pkg)
        except PackageNotFoundError:
            vers[pkg] = "missing"
    wrk = ""
    if shutil.which("wrk"):
        wrk = (subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout or "").split("\n")[0].split(" [")[0]
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "mem_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "loadavg": os.getloadavg(),
        "versions": vers,
        "wrk": wrk,
    }


def print_machine() -> dict[str, Any]:
    m = machine_info()
    log(
        f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem_gib']} GiB, Linux {m['kernel']}, "
        f"load average {m['loadavg'][0]:.2f} {m['loadavg'][1]:.2f} {m['loadavg'][2]:.2f}"
    )
    log("versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + (f", {m['wrk']}" if m["wrk"] else ""))
    return m


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def fmt_table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def compare_rounds(
    targets: dict[str, Callable[[str, float], tuple[Path, int]]],
    urls: dict[str, str],
    procs: dict[str, Proc],
    *,
    rounds: int,
    warmup: float,
    duration: float,
    connections: int,
    threads: int,
    per_request_headers: Sequence[str],
    static_headers: dict[str, dict[str, str]],
    tmp: Path,
    label: str,
) -> dict[str, list[dict[str, Any]]]:
    """Alternate the targets (A B, B A, ...) `rounds` times: warm-up, then a measured wrk run each.

    `targets[name](kind, seconds)` writes a request file for one run and returns (path, lines)."""
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    names = list(targets)
    for rnd in range(rounds):
        order = names if rnd % 2 == 0 else names[::-1]
        for name in order:
            proc = procs[name]
            if warmup > 0:
                data, lines = targets[name]("warmup", warmup)
                run_wrk(
                    urls[name],
                    data,
                    lines,
                    per_request_headers=per_request_headers,
                    static_headers=static_headers.get(name),
                    seconds=warmup,
                    connections=connections,
                    threads=threads,
                    tmp=tmp,
                )
                data.unlink(missing_ok=True)
            data, lines = targets[name]("measure", duration)
            cpu0 = group_cpu_seconds(proc.pgid)
            busy0, _ = machine_cpu_seconds()
            r = run_wrk(
                urls[name],
                data,
                lines,
                per_request_headers=per_request_headers,
                static_headers=static_headers.get(name),
                seconds=duration,
                connections=connections,
                threads=threads,
                tmp=tmp,
            )
            cpu = group_cpu_seconds(proc.pgid) - cpu0
            busy = machine_cpu_seconds()[0] - busy0
            data.unlink(missing_ok=True)
            if not proc.alive():
                raise RuntimeError(f"{name} died during the run:\n{proc.tail()}")
            mem = group_mem(proc.pgid)
            row = {
                "round": rnd + 1,
                "rps": r.rps,
                "p50_ms": r.p50_ms,
                "p90_ms": r.p90_ms,
                "p99_ms": r.p99_ms,
                "max_ms": r.max_ms,
                "requests": r.requests,
                "errors": r.errors,
                "wrapped": r.wrapped,
                "server_cpu_pct": 100 * cpu / r.seconds,
                "cpu_us_per_req": 1e6 * cpu / max(1, r.requests),
                "machine_busy_pct": 100 * busy / r.seconds,
                "rss_mib": mem.rss_mib,
                "raw": r.raw,
            }
            results[name].append(row)
            log(
                f"[{label}] {name:9s} round {rnd + 1}: {r.rps:8,.0f} req/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:7.2f} ms"
                f"  max {r.max_ms:7.1f} ms  errors {r.errors}  server CPU {row['server_cpu_pct']:3.0f}%"
                f"  {row['cpu_us_per_req']:5.0f} us/req  machine busy {row['machine_busy_pct']:3.0f}%"
                f"  RSS {mem.rss_mib:4.0f} MiB" + (f"  ({r.wrapped} repeated requests)" if r.wrapped else "")
            )
    return results


def summarize_pair(results: dict[str, list[dict[str, Any]]], app: str, base: str) -> dict[str, Any]:
    def agg(name: str) -> dict[str, Any]:
        rs = results[name]
        return {
            "rps": median([r["rps"] for r in rs]),
            "p50_ms": median([r["p50_ms"] for r in rs]),
            "p99_ms": median([r["p99_ms"] for r in rs]),
            "p99_ms_worst": max(r["p99_ms"] for r in rs),
            "cpu_us_per_req": median([r["cpu_us_per_req"] for r in rs]),
            "server_cpu_pct": median([r["server_cpu_pct"] for r in rs]),
            "errors": sum(r["errors"] for r in rs),
            "requests": sum(r["requests"] for r in rs),
            "rps_all": [round(r["rps"]) for r in rs],
        }

    a, b = agg(app), agg(base)
    # The ratio of medians, and the per-round ratios (a round runs both back to back).
    per_round = [ra["rps"] / rb["rps"] for ra, rb in zip(results[app], results[base], strict=False) if rb["rps"]]
    return {
        "app": a,
        "baseline": b,
        "ratio": a["rps"] / b["rps"] if b["rps"] else float("nan"),
        "ratio_rounds": [round(x, 3) for x in per_round],
        "cpu_ratio": a["cpu_us_per_req"] / b["cpu_us_per_req"] if b["cpu_us_per_req"] else float("nan"),
        # No answered request has no p99: NaN, which no target accepts.
        "p99_ratio": a["p99_ms"] / b["p99_ms"] if b["p99_ms"] and a["requests"] else float("nan"),
    }


def print_pair(label: str, s: dict[str, Any], *, ratio_key: str, p99_key: str) -> None:
    from bench.targets import TARGETS

    ratio_t, p99_t = TARGETS[ratio_key], TARGETS[p99_key]
    a, b = s["app"], s["baseline"]
    rows = [
        [
            "notifygw",
            f"{a['rps']:,.0f}",
            str(a["rps_all"]),
            f"{a['p50_ms']:.1f}",
            f"{a['p99_ms']:.1f}",
            f"{a['p99_ms_worst']:.1f}",
            f"{a['cpu_us_per_req']:.0f}",
            a["errors"],
        ],
        [
            "baseline",
            f"{b['rps']:,.0f}",
            str(b["rps_all"]),
            f"{b['p50_ms']:.1f}",
            f"{b['p99_ms']:.1f}",
            f"{b['p99_ms_worst']:.1f}",
            f"{b['cpu_us_per_req']:.0f}",
            b["errors"],
        ],
    ]
    print()
    print(f"## {label}")
    print(
        fmt_table(
            [
                "server",
                "req/s (median)",
                "req/s per round",
                "p50 ms",
                "p99 ms",
                "p99 ms worst",
                "server CPU us/req",
                "errors",
            ],
            rows,
        )
    )
    print(
        f"ratio notifygw/baseline throughput: {s['ratio']:.2f}x (per round {s['ratio_rounds']}); "
        f"CPU per request {s['cpu_ratio']:.1f}x the baseline's"
    )
    print(
        f"throughput {s['ratio']:.2f}x, target {ratio_t.text()}: {verdict(ratio_t.ok(s['ratio']))}; "
        f"p99 {a['p99_ms']:.1f} ms = {s['p99_ratio']:.2f}x the baseline's {b['p99_ms']:.1f} ms, "
        f"target {p99_t.text()}: {verdict(p99_t.ok(s['p99_ratio']))}"
    )
    print(flush=True)


def common_args(p: Any, *, duration: float = 10.0, warmup: float = 3.0, rounds: int = 2) -> None:
    p.add_argument("--duration", type=float, default=duration, help=f"measured seconds per run (default {duration:g})")
    p.add_argument("--warmup", type=float, default=warmup, help=f"warm-up seconds before each run (default {warmup:g})")
    p.add_argument(
        "--rounds", type=int, default=rounds, help=f"rounds, each runs notifygw and the baseline (default {rounds})"
    )
    p.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    p.add_argument("--json", type=Path, help="also write the figures to this file")


def size_for(seconds: float, rate_guess: float, floor: int = 2000) -> int:
    return max(floor, math.ceil(seconds * rate_guess))


def main(argv: list[str]) -> int:
    if argv[:1] == ["_serve"]:
        serve_baseline(argv[1], int(argv[2]))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
