"""Memory: idle and loaded RSS of the API and worker processes.

    .venv/bin/python bench/memory.py                 # idle, then 10 s of accept load + 2,000 end to end
    .venv/bin/python bench/memory.py --count 500 --duration 3

Starts `notifygw emulator`, `notifygw serve` and `notifygw worker` (2 processes x 8 threads) on a
fresh database with 3 wired tenants. Idle: sampled after a 5 s settle, before any notification.
Loaded: the peak of samples taken every 0.25 s while (1) wrk drives signed status callbacks, then
POST /v1/notifications, each for --duration seconds at 32 connections, with the worker draining
the notifications, and (2) --count notifications go end to end (accept, route, send, 4 callbacks).

For each process group: RSS summed over its processes (what `ps` adds up; pages shared between
dramatiq's forks are counted in each), PSS summed (shared pages divided between the processes
sharing them: what the group costs the machine), and the largest single process. Targets: API <= 150
MB, worker <= 250 MB, judged (as issue 7 words them) on RSS: the sum over the group's processes, at
idle and at the loaded peak; the PSS verdict is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import end_to_end, notify_accept, webhook_ingest
from bench.common import (
    Mem,
    MemSampler,
    Stack,
    fmt_table,
    install_signal_handlers,
    log,
    print_machine,
    run_wrk,
    verdict,
    write_requests,
)
from bench.targets import TARGETS

TARGETS_MB = {"api": TARGETS["api_rss_mb"].bound, "worker": TARGETS["worker_rss_mb"].bound}


def _mem(m: Mem) -> dict[str, float]:
    return {
        "rss": round(m.rss_mib, 1),
        "pss": round(m.pss_mib, 1),
        "max_process": round(m.max_proc_mib, 1),
        "processes": m.processes,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    with Stack("memory", worker=True, keep_logs=args.keep_logs) as stack:
        tenants = [stack.wire_tenant(f"Bench memory {i + 1}") for i in range(3)]
        groups = {k: stack.procs[k] for k in ("api", "worker", "emulator")}
        time.sleep(5.0)
        sampler = MemSampler(groups, every=0.25)
        idle = sampler.sample()
        log(
            "[memory] idle: "
            + ", ".join(
                f"{k} RSS {m.rss_mib:.0f} / PSS {m.pss_mib:.0f} MiB ({m.processes} processes)" for k, m in idle.items()
            )
        )
        with sampler:
            hooks = stack.tmp / "callbacks.tsv"
            n = write_requests(
                hooks, webhook_ingest.callback_rows(tenants[0], stack.api_url, int(args.duration * 4000))
            )
            r1 = run_wrk(
                stack.api_url,
                hooks,
                n,
                per_request_headers=webhook_ingest.PER_REQUEST,
                static_headers=webhook_ingest.STATIC,
                seconds=args.duration,
                tmp=stack.tmp,
            )
            log(f"[memory] status callbacks: {r1.rps:,.0f} req/s for {args.duration:g} s")
            posts = stack.tmp / "posts.tsv"
            n = write_requests(posts, notify_accept.notification_rows(int(args.duration * 4000)))
            r2 = run_wrk(
                stack.api_url,
                posts,
                n,
                static_headers={**notify_accept.STATIC, **tenants[0].auth},
                seconds=args.duration,
                tmp=stack.tmp,
            )
            log(f"[memory] POST /v1/notifications: {r2.rps:,.0f} req/s for {args.duration:g} s")
            flow = end_to_end.flow(stack, tenants, args.count, connections=32, max_wait=args.max_wait)
            log(
                f"[memory] end to end: {flow['terminal']:,}/{flow['count']:,} terminal in {flow['seconds']:.0f} s "
                f"(POST responses: {flow['load_statuses']})"
            )
        peaks = sampler.peaks
    res = {
        "idle": {k: _mem(m) for k, m in idle.items()},
        "loaded_peak": {k: _mem(m) for k, m in peaks.items()},
        "targets_mb": TARGETS_MB,
    }
    res["target_met"] = all(within(res, k, "rss") for k in TARGETS_MB)
    res["target_met_pss"] = all(within(res, k, "pss") for k in TARGETS_MB)
    report(res)
    return res


def within(res: dict[str, Any], group: str, measure: str) -> bool:
    limit = TARGETS_MB[group] * 1e6 / 2**20
    return max(res["idle"][group][measure], res["loaded_peak"][group][measure]) <= limit


def report(res: dict[str, Any]) -> None:
    print()
    print("## Memory (MiB; 150 MB = 143 MiB, 250 MB = 238 MiB)")
    rows = []
    for k in ("api", "worker", "emulator"):
        i, p = res["idle"][k], res["loaded_peak"][k]
        target = TARGETS_MB.get(k)
        verdicts = (
            f"<= {target:g} MB: RSS {verdict(within(res, k, 'rss'))}, PSS {verdict(within(res, k, 'pss'))}"
            if target
            else "(not ours)"
        )
        rows.append(
            [
                k,
                p["processes"],
                f"{i['rss']:.0f}",
                f"{i['pss']:.0f}",
                f"{p['rss']:.0f}",
                f"{p['pss']:.0f}",
                f"{p['max_process']:.0f}",
                verdicts,
            ]
        )
    print(
        fmt_table(
            ["group", "processes", "idle RSS", "idle PSS", "loaded RSS", "loaded PSS", "largest process", "target"],
            rows,
        )
    )
    print(flush=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=2000, help="notifications end to end (default 2,000)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of each wrk load (default 10)")
    p.add_argument("--max-wait", type=float, default=600.0)
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
