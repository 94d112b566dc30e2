"""Benchmark uvicorn (uvloop + httptools) against granian on a form-encoded POST (issue 2).

    .venv/bin/python bench/server/run.py              # full run: 1 and 2 workers, 3 rounds, 10 s each
    .venv/bin/python bench/server/run.py --quick      # smoke test: 2 s runs, 1 round

Each measured run starts the server afresh as its own process (its own session, so the whole
tree can be signalled), on a free 127.0.0.1 port, driven from Python the way production would
drive it (``uvicorn.run(..., factory=True, workers=N)`` / ``granian.Granian(..., factory=True,
workers=N).serve()``). It waits until the route answers 204, warms up, then runs wrk (with a
small Lua script that POSTs a Twilio-style status callback) for a fixed time, or, when wrk is
missing, an aiohttp load generator in a separate process. Rounds alternate the order of the
servers (A B, B A, A B, ...) so drift on the machine is spread over both. After each run the
server is sent SIGTERM and timed to exit; anything of its left alive is killed. Every process
this script starts is ended before it exits, including on Ctrl-C.

Only 127.0.0.1 is ever contacted, and every load loop is bounded in time.
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TARGET = "bench.server.app:create_app"
PATH = "/webhooks/twilio/status"
SERVERS = ("uvicorn", "granian")

# Run as a script, sys.path[0] is bench/server, whose app.py would shadow the project's `app`
# package; serve the benchmark app by its full dotted name from the repository root instead.
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    sys.path.pop(0)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# A WhatsApp message status callback as Twilio sends it (16 fields, ~700 bytes).
FORM = {
    "AccountSid": "AC" + "3f" * 16,
    "ApiVersion": "2010-04-01",
    "ChannelInstallSid": "XE" + "9a" * 16,
    "ChannelPrefix": "whatsapp",
    "ChannelStatusMessage": "Message Delivery - Experiment",
    "ChannelToAddress": "+1555000XXXX",
    "ErrorCode": "63016",
    "ErrorMessage": "Failed to send freeform message because you are outside the allowed window.",
    "EventType": "UNDELIVERED",
    "From": "whatsapp:+14155238886",
    "MessageSid": "SM" + "c4" * 16,
    "MessageStatus": "undelivered",
    "MessagingServiceSid": "MG" + "5e" * 16,
    "SmsSid": "SM" + "c4" * 16,
    "SmsStatus": "undelivered",
    "To": "whatsapp:+15550001234",
}
BODY = urlencode(FORM)
HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "X-Twilio-Signature": "kgTLUbFjgMCcTjqXGfn5Sdlr8uE=",
    "User-Agent": "TwilioProxy/1.1",
}


# --------------------------------------------------------------------------- servers


def serve(name: str, port: int, workers: int) -> None:
    """Run one server in this process (the child side of ``start_server``)."""
    if name == "uvicorn":
        import uvicorn

        uvicorn.run(
            TARGET,
            factory=True,
            host="127.0.0.1",
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            ws="none",
            lifespan="on",
            access_log=False,
            log_level="warning",
            app_dir=str(ROOT),
            timeout_graceful_shutdown=5,
        )
    elif name == "granian":
        from granian import Granian
        from granian.constants import HTTPModes, Interfaces, Loops
        from granian.log import LogLevels

        Granian(
            TARGET,
            address="127.0.0.1",
            port=port,
            interface=Interfaces.ASGI,
            workers=workers,
            loop=Loops.uvloop,
            http=HTTPModes.http1,
            websockets=False,
            factory=True,
            log_level=LogLevels.warning,
            log_access=False,
            working_dir=ROOT,
            workers_kill_timeout=5,
        ).serve()
    else:
        raise SystemExit(f"unknown server {name!r}")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("litestar", "uvicorn", "uvloop", "httptools", "granian"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


_STARTED: list[subprocess.Popen] = []
# --pin: CPU sets for the servers and the load generator (None: let the kernel schedule freely).
_CPUS: dict[str, set[int] | None] = {"server": None, "load": None}


def _pinned(role: str):
    cpus = _CPUS[role]
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the whole session a server (or load generator) was started in."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _cleanup() -> None:
    while _STARTED:
        _kill_group(_STARTED.pop())


atexit.register(_cleanup)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(name: str, workers: int, logdir: Path) -> tuple[subprocess.Popen, int, Path]:
    port = free_port()
    log = logdir / f"{name}-{workers}w-{port}.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "_serve", name, str(port), str(workers)],
            cwd=str(ROOT),
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the whole tree can be signalled
            preexec_fn=_pinned("server"),
        )
    _STARTED.append(proc)
    return proc, port, log


def post_once(port: int, timeout: float = 2.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", PATH, body=BODY, headers=HEADERS)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering")
        try:
            status = post_once(port, timeout=1.0)
            if status == 204:
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout:.0f} s (last: {last})")


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def group_pids(pgid: int, include_zombies: bool = True) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (f := _stat(int(entry))) and int(f[2]) == pgid and (include_zombies or f[0] != "Z"):
            pids.append(int(entry))
    return pids


def group_cpu_ticks(pgid: int) -> dict[int, int]:
    """User + system CPU ticks of every live process in the group (all their threads included)."""
    out = {}
    for pid in group_pids(pgid):
        if f := _stat(pid):
            out[pid] = int(f[11]) + int(f[12])
    return out


def all_cpu_ticks() -> dict[int, tuple[int, int]]:
    """pid -> (process group, user + system CPU ticks) for every process on the machine."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (f := _stat(int(entry))):
            out[int(entry)] = (int(f[2]), int(f[11]) + int(f[12]))
    return out


def other_cpu_ticks(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]], pgid: int) -> int:
    """CPU used meanwhile by processes that are neither the server's nor this script's.

    A lower bound: a process that started and ended inside the window is not seen. The load
    generator is not counted either (it is started and reaped between the two snapshots)."""
    me = os.getpid()
    return sum(t - before.get(pid, (0, 0))[1] for pid, (g, t) in after.items() if g != pgid and pid != me)


def group_rss_mib(pgid: int) -> float:
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid in group_pids(pgid):
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * page
        except OSError:
            continue
    return total / 2**20


def stop_server(proc: subprocess.Popen, grace: float = 10.0) -> tuple[float, bool, int]:
    """SIGTERM the server's main process only (as systemd or Docker would) and time its exit.

    Returns (seconds to exit, exited by itself, processes of its group left behind)."""
    t0 = time.monotonic()
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=grace)
        clean = True
    except subprocess.TimeoutExpired:
        clean = False
    took = time.monotonic() - t0
    deadline = time.monotonic() + 2.0  # helpers such as multiprocessing's resource tracker exit just after
    while (leftovers := len(group_pids(proc.pid, include_zombies=False))) and time.monotonic() < deadline:
        time.sleep(0.1)
    _kill_group(proc)
    if proc in _STARTED:
        _STARTED.remove(proc)
    return took, clean, leftovers


# --------------------------------------------------------------------------- load generators

WRK_LUA = """
wrk.method = "POST"
wrk.body = [[%(body)s]]
%(headers)s
done = function(summary, latency, requests)
  io.write(string.format(
    'BENCH {"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d,' ..
    '"err_connect":%%d,"err_read":%%d,"err_write":%%d,"err_status":%%d,"err_timeout":%%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout))
end
"""


def write_lua(tmp: Path) -> Path:
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in HEADERS.items())
    path = tmp / "post_form.lua"
    path.write_text(WRK_LUA % {"body": BODY, "headers": headers})
    return path


def run_load(tool: str, port: int, seconds: float, connections: int, threads: int, lua: Path) -> dict:
    url = f"http://127.0.0.1:{port}{PATH}"
    if tool == "wrk":
        cmd = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            str(lua),
            url,
        ]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "_loadgen", str(port), str(seconds), str(connections)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_pinned("load"),
    )
    _STARTED.append(proc)
    try:
        out, err = proc.communicate(timeout=seconds + 30)  # bounded even if the tool hangs
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise RuntimeError(f"{tool} did not finish within {seconds + 30:.0f} s") from None
    finally:
        if proc in _STARTED:
            _STARTED.remove(proc)
    for line in out.splitlines():
        if line.startswith("BENCH "):
            res = json.loads(line[6:])
            res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
            res["errors"] = sum(v for k, v in res.items() if k.startswith("err_"))
            return res
    raise RuntimeError(f"{tool} printed no result (rc={proc.returncode}): {out[-500:]} {err[-500:]}")


def loadgen(port: int, seconds: float, connections: int) -> None:
    """Fallback load generator (aiohttp), run in its own process. Bounded by ``seconds``."""
    import asyncio

    import aiohttp

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    url = f"http://127.0.0.1:{port}{PATH}"
    lat: list[float] = []
    errs = {"err_connect": 0, "err_read": 0, "err_write": 0, "err_status": 0, "err_timeout": 0}

    async def one(session: aiohttp.ClientSession, deadline: float) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=BODY, headers=HEADERS) as resp:
                    await resp.read()
                    if resp.status >= 400:
                        errs["err_status"] += 1
            except TimeoutError:
                errs["err_timeout"] += 1
                continue
            except aiohttp.ClientError:
                errs["err_read"] += 1
                continue
            lat.append(time.perf_counter() - t0)

    async def main() -> float:
        conn = aiohttp.TCPConnector(limit=connections)
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
            t0 = time.perf_counter()
            await asyncio.gather(*(one(session, t0 + seconds) for _ in range(connections)))
            return time.perf_counter() - t0

    took = asyncio.run(main())
    lat.sort()

    def pct(p: float) -> int:
        return int(lat[min(len(lat) - 1, int(len(lat) * p / 100))] * 1e6) if lat else 0

    res = {
        "requests": len(lat),
        "duration_us": int(took * 1e6),
        "p50_us": pct(50),
        "p90_us": pct(90),
        "p99_us": pct(99),
        "max_us": int(lat[-1] * 1e6) if lat else 0,
        **errs,
    }
    print("BENCH " + json.dumps(res), flush=True)


# --------------------------------------------------------------------------- driver


@dataclass
class Run:
    server: str
    workers: int
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_pct: float
    cpu_us_per_req: float
    rss_mib: float
    stop_s: float
    stop_clean: bool
    leftovers: int
    cpu_split: list[int] = field(default_factory=list)
    load_cpu_pct: float = 0.0
    other_cpu_pct: float = 0.0
    raw: dict = field(repr=False, default_factory=dict)


def one_run(name: str, workers: int, rnd: int, args: argparse.Namespace, tool: str, lua: Path, logdir: Path) -> Run:
    proc, port, log = start_server(name, workers, logdir)
    try:
        wait_ready(proc, port)
        if args.warmup > 0:
            run_load(tool, port, args.warmup, args.connections, args.threads, lua)
        cpu0, all0 = group_cpu_ticks(proc.pid), all_cpu_ticks()
        load0 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the load generator is reaped in run_load
        res = run_load(tool, port, args.duration, args.connections, args.threads, lua)
        cpu1, all1 = group_cpu_ticks(proc.pid), all_cpu_ticks()
        load1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        hz = os.sysconf("SC_CLK_TCK")
        per_proc = sorted(((t - cpu0.get(pid, 0)) / hz for pid, t in cpu1.items()), reverse=True)
        cpu = sum(per_proc)
        load_cpu = (load1.ru_utime + load1.ru_stime) - (load0.ru_utime + load0.ru_stime)
        other_cpu = other_cpu_ticks(all0, all1, proc.pid) / hz
        rss = group_rss_mib(proc.pid)
        if proc.poll() is not None:
            raise RuntimeError(f"server died during the run (rc={proc.returncode})")
    except BaseException as exc:
        _kill_group(proc)
        if proc in _STARTED:
            _STARTED.remove(proc)
        if isinstance(exc, Exception):
            sys.stderr.write(f"--- {log} (tail) ---\n{log.read_text()[-2000:]}\n")
        raise
    took, clean, leftovers = stop_server(proc)
    secs = res["duration_us"] / 1e6
    return Run(
        server=name,
        workers=workers,
        round=rnd,
        rps=res["rps"],
        p50_ms=res["p50_us"] / 1000,
        p99_ms=res["p99_us"] / 1000,
        errors=res["errors"],
        cpu_pct=100 * cpu / secs,
        cpu_us_per_req=1e6 * cpu / max(1, res["requests"]),
        rss_mib=rss,
        stop_s=took,
        stop_clean=clean,
        leftovers=leftovers,
        raw=res,
        cpu_split=[round(100 * c / secs) for c in per_proc if c > 0.01 * secs],
        load_cpu_pct=100 * load_cpu / secs,
        other_cpu_pct=100 * other_cpu / secs,
    )


def summarize(runs: list[Run], workers_list: list[int], servers: list[str]) -> str:
    head = (
        "| server | workers | runs | req/s median | req/s min-max | p50 ms | p99 ms | p99 ms worst "
        "| errors | server CPU % | CPU us/req | other CPU % | RSS MiB | SIGTERM->exit s |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for w in workers_list:
        for s in servers:
            rs = [r for r in runs if r.server == s and r.workers == w]
            if not rs:
                continue
            med = statistics.median
            rps = med([r.rps for r in rs])
            stop = max(r.stop_s for r in rs)
            clean = all(r.stop_clean for r in rs) and not any(r.leftovers for r in rs)
            lines.append(
                f"| {s} | {w} | {len(rs)} | {rps:,.0f} | {min(r.rps for r in rs):,.0f}-{max(r.rps for r in rs):,.0f} "
                f"| {med([r.p50_ms for r in rs]):.2f} | {med([r.p99_ms for r in rs]):.2f} "
                f"| {max(r.p99_ms for r in rs):.2f} | {sum(r.errors for r in rs)} "
                f"| {med([r.cpu_pct for r in rs]):.0f} | {med([r.cpu_us_per_req for r in rs]):.0f} "
                f"| {med([r.other_cpu_pct for r in rs]):.0f} | {med([r.rss_mib for r in rs]):.0f} | {stop:.2f}{'' if clean else ' (forced/orphans)'} |"
            )
    busy = [r.other_cpu_pct for r in runs]
    if busy and statistics.median(busy) > 10:
        lines.append(
            f"\nWARNING: other processes used at least a median {statistics.median(busy):.0f}% CPU during the "
            "measured runs; the absolute figures are noisy, compare ratios and CPU us/req."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_serve"]:
        serve(argv[1], int(argv[2]), int(argv[3]))
        return 0
    if argv[:1] == ["_loadgen"]:
        loadgen(int(argv[1]), float(argv[2]), int(argv[3]))
        return 0

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per run (default 10)")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per run, not measured (default 3)")
    p.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections (default 32)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: leaves a core for the server)")
    p.add_argument("--rounds", type=int, default=3, help="runs per server and worker count (default 3)")
    p.add_argument("--workers", default="1,2", help="worker counts to try, comma-separated (default 1,2)")
    p.add_argument("--servers", default=",".join(SERVERS), help="servers, comma-separated (default both)")
    p.add_argument("--loadgen", choices=("auto", "wrk", "aiohttp"), default="auto")
    p.add_argument("--max-seconds", type=float, default=900.0, help="stop starting runs after this (default 900)")
    p.add_argument(
        "--pin",
        action="store_true",
        help="pin the load generator to the last CPU and the server to the others, so every server "
        "gets the same CPU budget however many threads it runs",
    )
    p.add_argument("--json", type=Path, help="also write every run to this JSON file")
    p.add_argument("--quick", action="store_true", help="smoke test: 2 s runs, 1 s warm-up, 1 round")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.rounds = 2.0, 1.0, 1
    workers_list = [int(x) for x in args.workers.split(",") if x]
    servers = [s for s in args.servers.split(",") if s]
    for s in servers:
        if s not in SERVERS:
            p.error(f"unknown server {s!r}")

    tool = args.loadgen
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "aiohttp"
    elif tool == "wrk" and not shutil.which("wrk"):
        p.error("wrk not found (apt-get install -y wrk), or use --loadgen aiohttp")

    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            p.error("--pin needs at least 2 CPUs")
        _CPUS["server"], _CPUS["load"] = set(cpus[:-1]), {cpus[-1]}

    # Ctrl-C raises KeyboardInterrupt even if a parent shell ignored SIGINT; SIGTERM/SIGHUP exit
    # normally; either way the finally/atexit clean-up ends every process started here.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))

    v = versions()
    wrk_v = ""
    if tool == "wrk":
        wrk_v = (subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout or "").split("\n")[0]
    print(f"# {os.cpu_count()} CPUs, {platform.platform()}")
    print("# " + ", ".join(f"{k} {val}" for k, val in v.items()))
    print(
        f"# load: {tool} {wrk_v.split(' [')[0]} | {args.connections} connections, {args.threads} thread(s), "
        f"{args.warmup:g} s warm-up + {args.duration:g} s measured, {args.rounds} round(s), "
        f"POST {PATH} with a {len(BODY)}-byte form ({len(FORM)} fields)"
    )
    if args.pin:
        print(f"# pinned: server on CPUs {sorted(_CPUS['server'])}, load generator on CPUs {sorted(_CPUS['load'])}")
    print("# uvicorn: uvicorn.run(factory=True, loop=uvloop, http=httptools, ws=none, access_log=False)")
    print("# granian: Granian(interface=ASGI, loop=uvloop, http=1, websockets=False, factory=True)")

    runs: list[Run] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="notifygw-bench-") as tmp_s:
        tmp = Path(tmp_s)
        lua = write_lua(tmp)
        try:
            for w in workers_list:
                for rnd in range(args.rounds):
                    order = servers if rnd % 2 == 0 else list(reversed(servers))
                    for s in order:
                        if time.monotonic() - started > args.max_seconds:
                            print(f"# --max-seconds {args.max_seconds:g} reached; stopping early")
                            raise StopIteration
                        r = one_run(s, w, rnd + 1, args, tool, lua, tmp)
                        runs.append(r)
                        print(
                            f"{s:8s} workers={w} round={rnd + 1}: {r.rps:9,.0f} req/s  p50 {r.p50_ms:6.2f} ms  "
                            f"p99 {r.p99_ms:6.2f} ms  errors {r.errors}  server CPU {r.cpu_pct:4.0f}% "
                            f"({'+'.join(map(str, r.cpu_split)) or '0'})  "
                            f"{r.cpu_us_per_req:4.0f} us/req  RSS {r.rss_mib:4.0f} MiB  "
                            f"{tool} CPU {r.load_cpu_pct:3.0f}%  other CPU {r.other_cpu_pct:3.0f}%  "
                            f"SIGTERM->exit {r.stop_s:.2f} s{'' if r.stop_clean else ' (KILLED)'}"
                            f"{f' ({r.leftovers} left behind)' if r.leftovers else ''}",
                            flush=True,
                        )
        except StopIteration:
            pass
        finally:
            _cleanup()

    print()
    print(summarize(runs, workers_list, servers))
    if args.json:
        args.json.write_text(json.dumps([{**r.__dict__} for r in runs], indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        _cleanup()
        sys.stderr.write("interrupted; every process this run started has been stopped\n")
        sys.exit(130)
