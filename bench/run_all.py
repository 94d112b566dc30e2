"""Every notifygw benchmark in sequence, then one summary table against the targets (`make bench`).

    .venv/bin/python bench/run_all.py             # full: ~25-40 minutes on a 2-core machine
    .venv/bin/python bench/run_all.py --quick     # smoke run: ~5 minutes
    .venv/bin/python bench/run_all.py --only webhook,notify --json bench-results.json

Runs bench/webhook_ingest.py, bench/notify_accept.py, bench/end_to_end.py and bench/memory.py,
each on its own fresh stack (database, Redis namespace, processes), each torn down before the next
starts. Benchmarks report, they do not judge: the exit status is 0 whether or not a target is met,
and non-zero only when a benchmark could not run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import end_to_end, memory, notify_accept, webhook_ingest  # noqa: E402
from bench.common import fmt_table, install_signal_handlers, log, print_machine, verdict  # noqa: E402

ALL = ("webhook", "notify", "e2e", "memory")


def summary_rows(results: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    for key, label in (("webhook", "webhook ingest"), ("notify", "notify accept")):
        s = results.get(key)
        if not isinstance(s, dict):
            continue
        a, b = s["app"], s["baseline"]
        rows.append([label, f"{a['rps']:,.0f} req/s vs baseline {b['rps']:,.0f} = {s['ratio']:.2f}x", ">= 0.7x",
                     verdict(s["ratio"] >= 0.7)])
        rows.append([label, f"p99 {a['p99_ms']:.1f} ms (p50 {a['p50_ms']:.1f}; baseline p99 {b['p99_ms']:.1f})",
                     "<= 50 ms", verdict(a["p99_ms"] <= 50.0)])
        rows.append([label, f"CPU {a['cpu_us_per_req']:,.0f} us/req vs baseline {b['cpu_us_per_req']:,.0f} "
                            f"({s['cpu_ratio']:.1f}x)", "(explains)", ""])
        w = s.get("what_if")
        if w:
            rows.append([f"{label}, what-if", f"{w['app']['rps']:,.0f} req/s = {w['ratio']:.2f}x, p99 {w['app']['p99_ms']:.1f} ms, "
                                              f"CPU {w['app']['cpu_us_per_req']:,.0f} us/req ({w['patches']})",
                         ">= 0.7x, <= 50 ms", verdict(w["ratio"] >= 0.7 and w["app"]["p99_ms"] <= 50.0)])
    e = results.get("e2e")
    if isinstance(e, dict):
        rows.append(["end to end", f"{e['count']:,} in {e['seconds']:.0f} s = {e['notifications_per_s']:.0f}/s "
                                   f"({e['terminal']:,} terminal)", ">= 500/s", verdict(e["target_met"])])
        rows.append(["end to end", f"gateway CPU {e['gateway_cpu_ms_per_notification']:.1f} ms per notification "
                                   f"(API {e['cpu_ms_per_notification']['api']:.1f} + worker "
                                   f"{e['cpu_ms_per_notification']['worker']:.1f})", "(explains)", ""])
    m = results.get("memory")
    if isinstance(m, dict):
        for k, mb in memory.TARGETS_MB.items():
            i, p = m["idle"][k], m["loaded_peak"][k]
            rows.append([f"memory {k}", f"RSS idle {i['rss']:.0f} MiB, loaded {p['rss']:.0f} MiB ({p['processes']} processes, "
                                        f"largest {p['max_process']:.0f}); PSS idle {i['pss']:.0f}, loaded {p['pss']:.0f} MiB",
                         f"<= {mb:g} MB ({mb * 1e6 / 2**20:.0f} MiB)",
                         f"RSS {verdict(memory.within(m, k, 'rss'))} / PSS {verdict(memory.within(m, k, 'pss'))}"])
    for key, r in results.items():
        if isinstance(r, str):
            rows.append([key, f"FAILED: {r}", "", "ERROR"])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short runs: a smoke test of every benchmark")
    p.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    p.add_argument("--count", type=int, help="end-to-end notifications (default 10,000; 1,000 with --quick)")
    p.add_argument("--rounds", type=int, help="rounds of the two ratio benchmarks (default 2; 1 with --quick)")
    p.add_argument("--what-if", action="store_true",
                   help="also measure the API with the proposed fixes (bench/_patched.py) in the two ratio benchmarks")
    p.add_argument("--json", type=Path, help="write every figure to this file")
    args = p.parse_args(argv)
    wanted = [w for w in args.only.split(",") if w]
    for w in wanted:
        if w not in ALL:
            p.error(f"unknown benchmark {w!r}")
    install_signal_handlers()
    machine = print_machine()
    q = ["--quick"] if args.quick else []
    rounds = ["--rounds", str(args.rounds)] if args.rounds else []
    rounds += ["--what-if"] if args.what_if else []
    count = args.count or (1000 if args.quick else 10_000)
    plan = {
        "webhook": lambda: webhook_ingest.run(webhook_ingest.options(q + rounds)),
        "notify": lambda: notify_accept.run(notify_accept.options(q + rounds)),
        "e2e": lambda: end_to_end.run(end_to_end.parser().parse_args(["--count", str(count)])),
        "memory": lambda: memory.run(memory.parser().parse_args(
            ["--count", "300", "--duration", "3"] if args.quick else [])),
    }
    results: dict[str, Any] = {"machine": machine}
    failed = False
    started = time.monotonic()
    for name in wanted:
        log(f"=== {name} ===")
        t0 = time.monotonic()
        try:
            results[name] = plan[name]()
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one benchmark failing must not hide the others' figures
            traceback.print_exc()
            results[name] = f"{type(exc).__name__}: {exc}"[:300]
            failed = True
        log(f"=== {name}: {time.monotonic() - t0:.0f} s ===")
    print()
    print(f"# Summary ({time.monotonic() - started:.0f} s; {machine['nproc']} CPUs {machine['cpu']}, "
          f"{machine['mem_gib']} GiB; load average at start {machine['loadavg'][0]:.2f})")
    print(fmt_table(["benchmark", "measured", "target", "verdict"], summary_rows(results)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
        print(f"figures written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; every process started has been stopped\n")
        sys.exit(130)
