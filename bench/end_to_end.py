"""End to end: notifications through the API, the worker and the emulator, until every one is terminal.

    .venv/bin/python bench/end_to_end.py                 # 10,000 notifications across 3 tenants
    .venv/bin/python bench/end_to_end.py --count 1000    # a quick run

Starts `notifygw emulator`, `notifygw serve` and `notifygw worker` (its defaults: 2 processes x 8
threads) on a fresh database; wires 3 tenants through the public API, each with its own emulator
account, a WhatsApp template, `whatsapp.sender_rate_per_second` at its maximum (1000) and the API
rate limit at 100,000/s, so pacing is out of the way (`--default-pacing` leaves the sender's pacing
at the product's default instead; bench/run_all.py runs that once, with one tenant: one sender). After a warm-up (a few notifications per
tenant, each carried to `read`), an async load generator in its own process POSTs --count template
notifications (round-robin over the tenants, a new phone each) at 32 connections; the emulator
accepts each send and calls back `queued`, `sent`, `delivered`, `read` (4 signed status callbacks;
`--rate R` sends the POSTs open loop at R/s instead of as fast as 32 connections go;
the notification's last change is `read`). The database is polled every 0.5 s until every
notification is terminal (`read`, `failed` or `suppressed`), or --max-wait passes.

Reports the time from the first POST to the last terminal notification, notifications/s, CPU
seconds per notification summed over the gateway's processes (API + worker, all processes of each,
from /proc), and beside it what the emulator, PostgreSQL, Redis and the whole machine used, and
the peak memory of each process group, and every answer of 5xx: to the POSTs, and to the
emulator's status callbacks (read back from the emulator after the run). Targets (bench/targets.py):
>= 80 notifications/s, no 5xx, accept p99 <= 1 s, emulator <= 3 ms CPU per notification; the
gateway's CPU per notification against the webhook baseline's CPU per request is judged by
bench/run_all.py, which has both figures from the same run.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    PY,
    TEMPLATE_KEY,
    BackgroundLoad,
    CpuMeter,
    MemSampler,
    Stack,
    Tenant,
    fmt_table,
    group_mem,
    http_client,
    install_signal_handlers,
    log,
    print_machine,
    run_loadgen,
    start_loadgen,
    verdict,
    write_requests,
)
from bench.targets import TARGETS

TERMINAL = ("read", "failed", "suppressed")
PATH = "/v1/notifications"
STATIC = {"Content-Type": "application/json"}
# The proposed fixes (bench/_patched.py) not yet made: the API and the worker; the emulator has none left.
WHAT_IF = "no-owner-query"
WHAT_IF_EMULATOR = ""
_phones = iter(range(10**9))
STALL_SECONDS = 60.0


def rows(tenants: list[Tenant], count: int, tag: str):
    for k in range(count):
        i = next(_phones)
        tenant = tenants[k % len(tenants)]
        body = {
            "to": {"phone": f"+1415{2000000 + i % 8000000:07d}"},
            "template": TEMPLATE_KEY,
            "variables": {"name": "Ava", "order": str(18000 + i % 1000)},
            "metadata": {"bench": tag},
        }
        yield PATH, (f"Bearer {tenant.key}",), json.dumps(body, separators=(",", ":"))


def status_counts(stack: Stack, tag: str) -> dict[str, int]:
    return {
        r["status"]: r["n"]
        for r in stack.db.fetch(
            "SELECT status, count(*) AS n FROM notifications WHERE metadata->>'bench' = $1 GROUP BY status", tag
        )
    }


def emulator_pending(stack: Stack) -> int:
    with http_client(stack.emulator_url) as emu:
        return int(emu.get("/_emulator/status").json().get("pending_tasks", 0))


def callback_answers(stack: Stack, tenants: list[Tenant]) -> dict[str, int]:
    """Every answer the gateway gave to the emulator's status callbacks, by status code (retries included).

    `none` is an attempt with no answer: a connection error or a timeout."""
    counts: dict[str, int] = {}
    with http_client(stack.emulator_url, timeout=120) as emu:
        for t in tenants:
            r = emu.get("/_emulator/twilio/messages", params={"account_sid": t.account["account_sid"]})
            r.raise_for_status()
            for m in r.json()["messages"]:
                for cb in m.get("callbacks", []):
                    for a in cb.get("attempts", []):
                        code = str(a.get("status_code") or "none")
                        counts[code] = counts.get(code, 0) + 1
    return counts


def _count(stack: Stack, sql: str) -> int | None:
    """A table count that tolerates the schema changing under the benchmark (a table gone is None)."""
    try:
        return stack.db.scalar(sql)
    except Exception:
        return None


def wait_terminal(
    stack: Stack,
    tag: str,
    count: int,
    max_wait: float,
    *,
    poll: float = 0.5,
    progress: bool = True,
    load: BackgroundLoad | None = None,
    stall: float = STALL_SECONDS,
) -> tuple[float | None, dict[str, int], list[tuple[float, int]]]:
    """(monotonic time all were terminal or None, last counts, [(t, terminal)] trace).

    `count` notifications are expected; once `load` (the POSTs) is over, only those it got a 202 for.
    Gives up (None) after `max_wait`, or once the POSTs are over and no notification has changed
    status for `stall` seconds: a notification stuck short of terminal is reported, not waited for."""
    t_start = time.monotonic()
    deadline = t_start + max_wait
    trace: list[tuple[float, int]] = []
    last_print = 0.0
    counts: dict[str, int] = {}
    expected = count
    last_change, last_counts = t_start, None
    while time.monotonic() < deadline:
        for name in ("api", "worker", "emulator"):
            if name in stack.procs and not stack.procs[name].alive():
                raise RuntimeError(f"{name} died:\n{stack.procs[name].tail()}")
        if load is not None and load.done() and expected == count:
            expected = load.result()["statuses"].get("202", 0)
            if expected != count:
                log(f"[e2e] only {expected:,} of {count:,} POSTs were accepted: {load.result()['statuses']}")
        counts = status_counts(stack, tag)
        now = time.monotonic()
        done = sum(counts.get(s, 0) for s in TERMINAL)
        trace.append((now, done))
        if done >= expected and (load is None or load.done()):
            return now, counts, trace
        if counts != last_counts:
            last_change, last_counts = now, counts
        elif (load is None or load.done()) and now - last_change >= stall:
            log(
                f"[e2e] no status changed for {stall:.0f} s: giving up with {expected - done:,} not terminal ({counts})"
            )
            return None, counts, trace
        if progress and now - last_print >= 5:
            last_print = now
            log(
                f"[e2e] {now - t_start:5.0f} s: {sum(counts.values()):,} accepted, {done:,} terminal "
                f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})"
            )
        time.sleep(poll)
    return None, counts, trace


def warm_up(stack: Stack, tenants: list[Tenant], per_tenant: int = 20) -> None:
    """A few notifications per tenant, carried to the end: connections, caches and imports are warm."""
    tag = "warmup-" + secrets.token_hex(3)
    data = stack.tmp / f"{tag}.tsv"
    n = write_requests(data, rows(tenants, per_tenant * len(tenants), tag))
    res = run_loadgen(
        stack.api_url,
        data,
        per_request_headers=("Authorization",),
        static_headers=STATIC,
        connections=8,
        max_seconds=120,
        tmp=stack.tmp,
    )
    if res["statuses"].get("202", 0) != n:
        raise RuntimeError(f"warm-up: expected {n} x 202, got {res['statuses']}")
    t, counts, _ = wait_terminal(stack, tag, n, 120, progress=False)
    if t is None:
        raise RuntimeError(f"warm-up did not finish in 120 s: {counts}")
    log(f"[e2e] warm-up: {n} notifications terminal ({counts})")
    # Production's autovacuum analyzes the tables as they fill; this machine's PostgreSQL runs with
    # autovacuum off (its CI config), and on never-analyzed tables the planner takes a tenant's index
    # over a primary key, scanning every row of the tenant per lookup: quadratic in the run's size.
    stack.db.execute("ANALYZE")


def flow(
    stack: Stack, tenants: list[Tenant], count: int, *, connections: int, max_wait: float, rate: float = 0.0
) -> dict[str, Any]:
    tag = "e2e-" + secrets.token_hex(3)
    data = stack.tmp / f"{tag}.tsv"
    n = write_requests(data, rows(tenants, count, tag))
    gateway = {k: stack.procs[k] for k in ("api", "worker")}
    meter = CpuMeter({**gateway, "emulator": stack.procs["emulator"]})
    answers_before = callback_answers(stack, tenants)  # the warm-up's, not this run's
    with MemSampler({k: stack.procs[k] for k in ("api", "worker", "emulator")}, every=0.5) as mem:
        cpu0 = meter.read()
        t0 = time.monotonic()
        loader = start_loadgen(
            stack.api_url,
            data,
            per_request_headers=("Authorization",),
            static_headers=STATIC,
            connections=connections if not rate else 512,
            max_seconds=max_wait,
            rate=rate,
            tmp=stack.tmp,
        )
        t_end, counts, trace = wait_terminal(stack, tag, n, max_wait, load=loader)
        cpu1 = meter.read()
        load = loader.result()
    cpu = CpuMeter.delta(cpu0, cpu1)
    elapsed = (t_end if t_end is not None else time.monotonic()) - t0
    terminal = sum(counts.get(s, 0) for s in TERMINAL)
    accepted_at = load["seconds"]
    gateway_cpu = cpu["api"] + cpu["worker"]
    callbacks = _count(stack, "SELECT count(*) FROM raw_events WHERE kind = 'status'")
    applied = _count(stack, "SELECT count(*) FROM provider_events WHERE applied")
    sends = _count(stack, "SELECT count(*) FROM attempts WHERE channel = 'whatsapp'")
    pending = emulator_pending(stack)
    answers = {k: v - answers_before.get(k, 0) for k, v in callback_answers(stack, tenants).items()}
    answers = {k: v for k, v in answers.items() if v}
    post_5xx = sum(v for k, v in load["statuses"].items() if k.isdigit() and int(k) >= 500)
    callback_5xx = sum(v for k, v in answers.items() if k.isdigit() and int(k) >= 500)
    # Throughput over the steady part: from the first to the last 10% -> 90% of terminal notifications.
    steady = None
    marks = [(t, d) for t, d in trace]
    lo = next((t for t, d in marks if d >= 0.1 * n), None)
    hi = next((t for t, d in marks if d >= 0.9 * n), None)
    if lo is not None and hi is not None and hi > lo:
        steady = 0.8 * n / (hi - lo)
    return {
        "count": n,
        "accepted": load["statuses"].get("202", 0),
        "tenants": len(tenants),
        "finished": t_end is not None,
        "terminal": terminal,
        "statuses": counts,
        "seconds": elapsed,
        "notifications_per_s": terminal / elapsed if elapsed else 0.0,
        "steady_per_s_10_90": steady,
        "accept_seconds": accepted_at,
        "accept_per_s": load["rps"],
        "accept_p99_ms": load["p99_ms"],
        "load_statuses": load["statuses"],
        "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
        "gateway_cpu_s": gateway_cpu,
        "gateway_cpu_ms_per_notification": 1000 * gateway_cpu / max(1, terminal),
        "cpu_ms_per_notification": {
            k: round(1000 * v / max(1, terminal), 3) for k, v in cpu.items() if k not in ("machine total",)
        },
        "machine_busy_pct": 100 * cpu["machine busy"] / max(1e-9, cpu["machine total"]),
        "mem_peak_mib": {
            k: {
                "rss": round(m.rss_mib, 1),
                "pss": round(m.pss_mib, 1),
                "max_process": round(m.max_proc_mib, 1),
                "processes": m.processes,
            }
            for k, m in mem.peaks.items()
        },
        "status_callbacks_stored": callbacks,
        "provider_events_applied": applied,
        "whatsapp_sends": sends,
        "emulator_pending_after": pending,
        "rate": rate,
        "callback_answers": answers,
        "post_5xx": post_5xx,
        "callback_5xx": callback_5xx,
        "callback_unanswered": answers.get("none", 0),
        "answers_5xx": post_5xx + callback_5xx,
    }


def what_if_stack_options(patches: str, emulator_patches: str) -> dict[str, Any]:
    here = Path(__file__).resolve().parent
    return {
        "api_cmd": [PY, str(here / "_patched.py"), "serve"],
        "worker_cmd": [PY, "-m", "dramatiq", "bench._patched_worker"],
        "emulator_cmd": [PY, str(here / "_patched.py"), "emulator"],
        "extra_env": {"BENCH_PATCHES": patches},
        "emulator_env": {"BENCH_PATCHES": emulator_patches},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    options = what_if_stack_options(args.what_if, args.what_if_emulator) if args.what_if else {}
    if args.what_if:
        log(f"[e2e] WHAT-IF run: API and worker with {args.what_if}; emulator with {args.what_if_emulator}")
    with Stack(
        "e2e",
        worker=True,
        worker_processes=args.worker_processes,
        worker_threads=args.worker_threads,
        keep_logs=args.keep_logs,
        **options,
    ) as stack:
        sender_rate = None if args.default_pacing else args.sender_rate
        tenants = [stack.wire_tenant(f"Bench e2e {i + 1}", sender_rate=sender_rate) for i in range(args.tenants)]
        idle = {k: group_mem(stack.procs[k].pgid) for k in ("api", "worker", "emulator")}
        log(
            f"[e2e] {len(tenants)} tenants wired; idle RSS: "
            + ", ".join(f"{k} {m.rss_mib:.0f} MiB ({m.processes} processes)" for k, m in idle.items())
        )
        warm_up(stack, tenants)
        log(f"[e2e] sending {args.count:,} notifications at {args.connections} connections")
        res = flow(stack, tenants, args.count, connections=args.connections, max_wait=args.max_wait, rate=args.rate)
    res["idle_mib"] = {
        k: {"rss": round(m.rss_mib, 1), "pss": round(m.pss_mib, 1), "processes": m.processes} for k, m in idle.items()
    }
    res["what_if"] = {"gateway": args.what_if, "emulator": args.what_if_emulator} if args.what_if else None
    res["pacing"] = "default" if args.default_pacing else f"{args.sender_rate:g}/s per sender"
    res["verdicts"] = verdicts(res)
    res["target_met"] = all(res["verdicts"].values())
    report(res)
    return res


def verdicts(res: dict[str, Any]) -> dict[str, bool]:
    """The end-to-end targets this run can judge alone (the CPU ratio needs the webhook baseline: run_all)."""
    complete = res["finished"]  # every accepted one terminal; refusals are judged by the 5xx goal
    return {
        "e2e_per_s": complete and TARGETS["e2e_per_s"].ok(res["notifications_per_s"]),
        "e2e_5xx": TARGETS["e2e_5xx"].ok(res["answers_5xx"]),
        "e2e_accept_p99_ms": TARGETS["e2e_accept_p99_ms"].ok(res["accept_p99_ms"]),
        "emulator_cpu_ms": TARGETS["emulator_cpu_ms"].ok(res["cpu_ms_per_notification"].get("emulator")),
    }


def report(res: dict[str, Any]) -> None:
    print()
    print(
        f"## End to end ({res['count']:,} notifications, {res['tenants']} tenants, 4 status callbacks each, "
        f"pacing {res['pacing']}"
        + (f", open loop at {res['rate']:g}/s" if res["rate"] else ", 32 connections")
        + ")"
        + (f" -- WHAT-IF: {res['what_if']}" if res.get("what_if") else "")
    )
    cpu = res["cpu_s"]
    per = res["cpu_ms_per_notification"]
    rows = [
        [k, f"{cpu[k]:.1f}", f"{per[k]:.2f}"]
        for k in ("api", "worker", "emulator", "postgres (all DBs)", "redis-server", "machine busy")
    ]
    print(
        f"finished: {res['finished']}; terminal {res['terminal']:,}/{res['count']:,} ({res['accepted']:,} accepted "
        f"with 202): {res['statuses']}"
    )
    print(
        f"time from the first POST to the last terminal notification: {res['seconds']:.1f} s -> "
        f"{res['notifications_per_s']:.0f} notifications/s (steady 10%->90%: "
        f"{res['steady_per_s_10_90'] or float('nan'):.0f}/s)"
    )
    print(
        f"accept phase: {res['accept_seconds']:.1f} s ({res['accept_per_s']:.0f}/s, p99 {res['accept_p99_ms']:.0f} ms), "
        f"responses {res['load_statuses']}"
    )
    print(
        f"status callbacks stored {res['status_callbacks_stored']:,}, applied {res['provider_events_applied']:,}, "
        f"WhatsApp sends {res['whatsapp_sends']:,}; emulator deliveries still pending: {res['emulator_pending_after']}"
    )
    print(fmt_table(["process", "CPU s", "CPU ms per notification"], rows))
    print(
        f"gateway (API + worker): {res['gateway_cpu_ms_per_notification']:.2f} ms CPU per notification "
        f"-> at most {2000 / max(1e-9, res['gateway_cpu_ms_per_notification']):.0f} notifications/s on 2 cores "
        f"for the gateway alone; machine busy {res['machine_busy_pct']:.0f}%"
    )
    print(
        "memory (MiB, RSS sum over each group): "
        + "; ".join(
            f"{k} idle {res['idle_mib'][k]['rss']:.0f} peak {m['rss']:.0f} (PSS {m['pss']:.0f}, {m['processes']} processes)"
            for k, m in res["mem_peak_mib"].items()
        )
    )
    print(
        f"answers of 5xx: {res['answers_5xx']} ({res['post_5xx']} to POSTs, {res['callback_5xx']} to status "
        f"callbacks; {res['callback_unanswered']} callback attempts unanswered); callback answers "
        f"{res['callback_answers']}"
    )
    figures = {
        "e2e_per_s": f"{res['notifications_per_s']:.0f}/s",
        "e2e_5xx": str(res["answers_5xx"]),
        "e2e_accept_p99_ms": f"{res['accept_p99_ms']:.0f} ms",
        "emulator_cpu_ms": f"{res['cpu_ms_per_notification'].get('emulator', float('nan')):.2f} ms",
    }
    print(
        "; ".join(
            f"{TARGETS[k].what} {figures[k]} {TARGETS[k].text()}: {verdict(ok)}" for k, ok in res["verdicts"].items()
        )
    )
    print(flush=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=10_000, help="notifications (default 10,000)")
    p.add_argument("--tenants", type=int, default=3)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--sender-rate", type=float, default=1000.0, help="whatsapp.sender_rate_per_second (max 1000)")
    p.add_argument(
        "--default-pacing", action="store_true", help="leave whatsapp.sender_rate_per_second at the product's default"
    )
    p.add_argument("--rate", type=float, default=0.0, help="POST open loop at this many per second (default: closed)")
    p.add_argument("--worker-processes", type=int, default=2, help="`notifygw worker --processes` (default 2)")
    p.add_argument("--worker-threads", type=int, default=8, help="`notifygw worker --threads` (default 8)")
    p.add_argument("--max-wait", type=float, default=900.0, help="give up after this many seconds (default 900)")
    p.add_argument(
        "--what-if",
        nargs="?",
        const=WHAT_IF,
        default=None,
        metavar="PATCHES",
        help="run the API and worker with bench/_patched.py's proposed fixes (default: all of them)",
    )
    p.add_argument(
        "--what-if-emulator",
        default=WHAT_IF_EMULATOR,
        metavar="PATCHES",
        help=f"with --what-if, the emulator's patches (default {WHAT_IF_EMULATOR}; '' for none)",
    )
    p.add_argument("--keep-logs", action="store_true")
    p.add_argument("--json", type=Path)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    install_signal_handlers()
    print_machine()
    res = run(args)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
