"""Profile a notifygw process under benchmark load with py-spy, and print its top frames.

    .venv/bin/python bench/profile.py webhook            # the API under signed status callbacks
    .venv/bin/python bench/profile.py notify             # the API under POST /v1/notifications
    .venv/bin/python bench/profile.py worker --count 3000  # worker, API and emulator during an end-to-end run

Starts the same stack as the benchmarks, applies the same load (wrk, 32 connections; for `worker`
the end-to-end flow), and records the target process with `py-spy record` (100 Hz, raw collapsed
stacks of every thread that is not waiting; with --gil, only of the thread holding the GIL).
Prints the CPU by package and by notifygw call chain, the functions with the largest inclusive and
self share of the busy samples, and keeps the collapsed stacks (`--out`) for a flame graph
(`py-spy` / speedscope / inferno can read them). Needs py-spy in the venv
(`.venv/bin/pip install py-spy`) and ptrace rights (root, or kernel.yama.ptrace_scope=0).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    PY,
    Stack,
    group_pids,
    install_signal_handlers,
    log,
    run_wrk,
    write_requests,
)

PY_SPY = str(Path(PY).parent / "py-spy") if (Path(PY).parent / "py-spy").exists() else shutil.which("py-spy")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("/site-packages/", "/work/main/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3.":
                path = "stdlib/" + path.split("/", 1)[1]
            break
    return f"{m.group('func')} ({path})"


def _package(frame: str) -> str:
    """py-spy shortens paths to what follows sys.path: `sqlalchemy/orm/session.py`, `app/notify/service.py`."""
    m = _FRAME.match(frame)
    path = m.group("file") if m else frame
    for marker in ("/site-packages/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    parts = path.lstrip("/").split("/")
    if parts[0] in ("app", "tenants", "channels", "bench") and len(parts) > 1:
        return f"notifygw {parts[0]}.{parts[1].removesuffix('.py')}"
    return parts[0].removesuffix(".py")


def top_frames(collapsed: Path, n: int = 25) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    chains: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        c = int(count)
        frames = [_short(f) for f in stack.split(";")]
        if frames[-1].startswith(IDLE_LEAVES) or any(f.startswith(IDLE_LEAVES[-2]) for f in frames[-2:]):
            continue
        total += c
        for f in set(frames):
            inclusive[f] += c
        own[frames[-1]] += c
        packages[_package(stack.split(";")[-1])] += c
        mine = [f for f in frames if _package(f).startswith("notifygw") and "cli.py" not in f]
        chains[" > ".join(f.split(" (")[0] for f in mine[-3:]) or "(outside notifygw code)"] += c
    if not total:
        return "(no samples)"
    out = [
        f"{total} busy samples ({'holding the GIL' if GIL_ONLY else 'any thread not waiting'})",
        "",
        "self % by package (where the Python CPU time goes)",
    ]
    out += [f"{100 * c / total:6.1f}% | {f}" for f, c in packages.most_common(15)]
    out += ["", "self % by the innermost notifygw frames on the stack (what our code spends, libraries included)"]
    out += [f"{100 * c / total:6.1f}% | {f}" for f, c in chains.most_common(n)]
    out += ["", "inclusive % | function (file)  (SQLAlchemy's greenlet stacks appear as their own roots)"]
    out += [f"{100 * c / total:10.1f}% | {f}" for f, c in inclusive.most_common(n)]
    out += ["", "self % | function (file)"]
    out += [f"{100 * c / total:6.1f}% | {f}" for f, c in own.most_common(n)]
    return "\n".join(out)


GIL_ONLY = False
# Leaves where a thread waits (py-spy's idle detection misses some): dropped from the figures.
IDLE_LEAVES = (
    "Condition.wait",
    "Event.wait",
    "Queue.get",
    "Thread.join",
    "EpollSelector.select",
    "select.epoll",
    "_worker (concurrent/futures/thread.py",
    "Lock.acquire",
    "sleep (",
)


def record(pid: int, seconds: float, out: Path, *, subprocesses: bool = False) -> subprocess.Popen:
    cmd = [PY_SPY, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "100", "-f", "raw", "-o", str(out)]
    if GIL_ONLY:
        cmd.append("--gil")
    if subprocesses:
        cmd.append("--subprocesses")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=("webhook", "notify", "worker"))
    p.add_argument("--seconds", type=float, default=15.0, help="load and recording time (default 15)")
    p.add_argument("--count", type=int, default=3000, help="notifications for `worker` (default 3000)")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--patches", help="profile the API with these bench/_patched.py what-if fixes applied")
    p.add_argument(
        "--gil",
        action="store_true",
        help="only samples holding the GIL (default: every thread not waiting, which also sees C code "
        "that releases the GIL, such as OpenSSL loading CA certificates)",
    )
    p.add_argument("--out", type=Path, help="directory for the collapsed stacks (default: a temp dir, printed)")
    args = p.parse_args(argv)
    if not PY_SPY:
        p.error("py-spy not found: .venv/bin/pip install py-spy")
    install_signal_handlers()
    global GIL_ONLY
    GIL_ONLY = args.gil

    from bench import end_to_end, notify_accept, webhook_ingest

    patched = (
        dict(
            api_cmd=[PY, str(Path(__file__).resolve().parent / "_patched.py"), "serve"],
            extra_env={"BENCH_PATCHES": args.patches},
        )
        if args.patches
        else {}
    )
    with Stack(f"profile-{args.what}", worker=args.what == "worker", keep_logs=True, **patched) as stack:
        outdir = args.out or stack.tmp
        outdir.mkdir(parents=True, exist_ok=True)
        api_pid = stack.procs["api"].pgid
        if args.what in ("webhook", "notify"):
            tenant = stack.wire_tenant("Bench profile")
            data = stack.tmp / "requests.tsv"
            if args.what == "webhook":
                n = write_requests(data, webhook_ingest.callback_rows(tenant, stack.api_url, int(args.seconds * 3000)))
                headers, static = webhook_ingest.PER_REQUEST, webhook_ingest.STATIC
            else:
                n = write_requests(data, notify_accept.notification_rows(int(args.seconds * 3000)))
                headers, static = (), {**notify_accept.STATIC, **tenant.auth}
            run_wrk(
                stack.api_url, data, n, per_request_headers=headers, static_headers=static, seconds=2, tmp=stack.tmp
            )  # warm-up
            out = outdir / f"{args.what}-api.collapsed"
            rec = record(api_pid, args.seconds, out)
            time.sleep(0.5)
            r = run_wrk(
                stack.api_url,
                data,
                n,
                per_request_headers=headers,
                static_headers=static,
                seconds=args.seconds,
                tmp=stack.tmp,
            )
            rec.wait(timeout=args.seconds + 60)
            log(f"load during the recording: {r.rps:,.0f} req/s, p99 {r.p99_ms:.1f} ms, errors {r.errors}")
            print(f"\n# py-spy: API process under {args.what} load ({out})\n" + top_frames(out, args.top))
        else:
            tenants = [stack.wire_tenant(f"Bench profile {i}") for i in range(3)]
            end_to_end.warm_up(stack, tenants)
            worker = stack.procs["worker"]
            kids = [pid for pid in group_pids(worker.pgid, zombies=False) if pid != worker.pgid]
            outs = {"api": outdir / "e2e-api.collapsed", "emulator": outdir / "e2e-emulator.collapsed"}
            recs = [
                record(api_pid, args.seconds, outs["api"]),
                record(stack.procs["emulator"].pgid, args.seconds, outs["emulator"]),
            ]
            for k in kids:
                outs[f"worker-{k}"] = outdir / f"e2e-worker-{k}.collapsed"
                recs.append(record(k, args.seconds, outs[f"worker-{k}"]))
            time.sleep(0.5)
            res = end_to_end.flow(stack, tenants, args.count, connections=32, max_wait=args.seconds + 600)
            for rec in recs:
                rec.wait(timeout=args.seconds + 60)
            log(f"end-to-end during the recording: {res['notifications_per_s']:.0f} notifications/s")
            for name, out in outs.items():
                print(f"\n# py-spy: {name} during the end-to-end run ({out})\n" + top_frames(out, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
