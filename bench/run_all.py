"""Every notifygw benchmark in sequence, then one table of the goals with their verdicts (`make bench`).

    .venv/bin/python bench/run_all.py             # full: ~40-60 minutes on a 2-core machine
    .venv/bin/python bench/run_all.py --quick     # smoke run: ~10 minutes (make bench-quick)
    .venv/bin/python bench/run_all.py --only webhook,burst --json bench-results.json

Runs, each on its own fresh stack (database, Redis namespace, processes) torn down before the next
starts: webhook ingest and notify accept (closed loop, 32 connections, each beside its minimal
baseline), the 500/s burst (open loop; the generator checked against the baseline first), end to
end twice (3 tenants with raised pacing, then one sender at the default pacing), the SQL trace
(round trips counted at the driver) and memory. The targets are in bench/targets.py; every ratio
is against a baseline measured in this same run. The gateway's CPU per notification is judged
against the webhook baseline's CPU per request, so the end-to-end CPU verdict needs `webhook` in
the same run. Benchmarks report, they do not judge the build: the exit status is 0 whether or not
a target is met, and non-zero only when a benchmark could not run.
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

from bench import burst, end_to_end, memory, notify_accept, sql_trace, webhook_ingest
from bench.common import fmt_table, install_signal_handlers, log, print_machine, verdict
from bench.targets import BURST_RATE, GENERATOR_MIN_RATE_SHARE, TARGETS

ALL = ("webhook", "notify", "burst", "e2e", "e2e-default", "sql", "memory")
MB = 1e6 / 2**20  # MiB per MB


def _row(goal: str, measured: str, baseline: str, key: str | None, ok: bool | None) -> list[str]:
    target = TARGETS[key].text() if key else "(explains)"
    return [goal, measured, baseline, target, "" if ok is None else verdict(ok)]


def _pair_rows(label: str, s: dict[str, Any], ratio_key: str, p99_key: str) -> list[list[str]]:
    a, b = s["app"], s["baseline"]
    return [
        _row(
            f"{label}: throughput",
            f"{a['rps']:,.0f} req/s",
            f"{b['rps']:,.0f} req/s; ratio {s['ratio']:.2f}x",
            ratio_key,
            TARGETS[ratio_key].ok(s["ratio"]),
        ),
        _row(
            f"{label}: p99",
            f"{a['p99_ms']:.1f} ms (p50 {a['p50_ms']:.1f})",
            f"{b['p99_ms']:.1f} ms; ratio {s['p99_ratio']:.2f}x",
            p99_key,
            TARGETS[p99_key].ok(s["p99_ratio"]),
        ),
        _row(
            f"{label}: CPU per request",
            f"{a['cpu_us_per_req']:,.0f} us",
            f"{b['cpu_us_per_req']:,.0f} us; ratio {s['cpu_ratio']:.1f}x",
            None,
            None,
        ),
    ]


def _e2e_rows(label: str, e: dict[str, Any], webhook: Any, *, default_pacing: bool) -> list[list[str]]:
    per = e["cpu_ms_per_notification"]
    complete = e["finished"]
    steady = e["steady_per_s_10_90"]
    rows = []
    if default_pacing:
        rows.append(
            _row(
                f"{label}: one sender at the default pacing",
                f"steady {steady or float('nan'):.0f}/s ({e['count']:,} in {e['seconds']:.0f} s = "
                f"{e['notifications_per_s']:.0f}/s overall)",
                "",
                "default_pacing_per_s",
                complete and TARGETS["default_pacing_per_s"].ok(steady),
            )
        )
    else:
        rows.append(
            _row(
                f"{label}: notifications/s",
                f"{e['count']:,} in {e['seconds']:.0f} s = {e['notifications_per_s']:.0f}/s "
                f"(steady {steady or float('nan'):.0f}/s; {e['terminal']:,} terminal)",
                "",
                "e2e_per_s",
                e["verdicts"]["e2e_per_s"],
            )
        )
        gw = e["gateway_cpu_ms_per_notification"]
        if isinstance(webhook, dict):
            base_us = webhook["baseline"]["cpu_us_per_req"]
            ratio = 1000 * gw / base_us if base_us else float("nan")
            rows.append(
                _row(
                    f"{label}: gateway CPU per notification",
                    f"{gw:.1f} ms (API {per['api']:.1f} + worker {per['worker']:.1f})",
                    f"webhook baseline {base_us:,.0f} us/req; ratio {ratio:.0f}x",
                    "e2e_cpu_ratio",
                    TARGETS["e2e_cpu_ratio"].ok(ratio),
                )
            )
        else:
            rows.append(
                _row(
                    f"{label}: gateway CPU per notification",
                    f"{gw:.1f} ms (API {per['api']:.1f} + worker {per['worker']:.1f})",
                    "no webhook baseline in this run (add webhook to --only)",
                    "e2e_cpu_ratio",
                    False,
                )
            )
    rows.append(
        _row(
            f"{label}: answers of 5xx",
            f"{e['answers_5xx']} ({e['post_5xx']} to POSTs, {e['callback_5xx']} to callbacks; "
            f"{e['callback_unanswered']} callback attempts unanswered)",
            "",
            "e2e_5xx",
            e["verdicts"]["e2e_5xx"],
        )
    )
    rows.append(
        _row(
            f"{label}: accept p99 under load",
            f"{e['accept_p99_ms']:,.0f} ms ({e['accept_per_s']:.0f} accepts/s, {e['load_statuses']})",
            "",
            "e2e_accept_p99_ms",
            e["verdicts"]["e2e_accept_p99_ms"],
        )
    )
    if not default_pacing:
        rows.append(
            _row(
                f"{label}: emulator CPU per notification",
                f"{per.get('emulator', float('nan')):.2f} ms (4 callbacks each)",
                "",
                "emulator_cpu_ms",
                e["verdicts"]["emulator_cpu_ms"],
            )
        )
    return rows


def summary_rows(results: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    w = results.get("webhook")
    if isinstance(w, dict):
        rows += _pair_rows("webhook ingest", w, "webhook_ratio", "webhook_p99_ratio")
    b = results.get("burst")
    if isinstance(b, dict):
        base, app = b["baseline"], b["app"]
        rows.append(
            _row(
                f"burst {b['rate']:.0f}/s x {b['seconds']:g} s: generator holds the rate",
                f"sent at {base['rate_sent']:.0f}/s to the baseline (send lag p95 {base['send_lag_p95_ms']:.1f} ms)",
                f"baseline p95 {base['p95_ms']:.1f} ms, {base['errors']} errors",
                None,
                None,
            )
        )
        rows[-1][3] = f">= {GENERATOR_MIN_RATE_SHARE:.0%} of {BURST_RATE:g}/s, baseline in target"
        rows[-1][4] = "HELD" if b["generator_ok"] else "NOT HELD"
        invalid = "" if b["generator_ok"] else " (generator did not hold the rate: not a valid run)"
        rows.append(
            _row(
                "burst: p95 from scheduled time",
                f"{app['p95_ms']:.1f} ms (p50 {app['p50_ms']:.1f}, p99 {app['p99_ms']:.1f}){invalid}",
                f"{base['p95_ms']:.1f} ms",
                "burst_p95_ms",
                b["generator_ok"] and TARGETS["burst_p95_ms"].ok(app["p95_ms"]),
            )
        )
        rows.append(
            _row(
                "burst: errors",
                f"{app['errors']} of {app['requests']:,} ({app['statuses']})",
                f"{base['errors']}",
                "burst_errors",
                b["generator_ok"] and TARGETS["burst_errors"].ok(app["errors"]),
            )
        )
    n = results.get("notify")
    if isinstance(n, dict):
        rows += _pair_rows("notify accept", n, "notify_ratio", "notify_p99_ratio")
    e = results.get("e2e")
    if isinstance(e, dict):
        rows += _e2e_rows("end to end", e, w, default_pacing=False)
    d = results.get("e2e-default")
    if isinstance(d, dict):
        rows += _e2e_rows("end to end, default pacing", d, w, default_pacing=True)
    s = results.get("sql")
    if isinstance(s, dict):
        rows.append(
            _row(
                "database round trips per notification",
                f"{s['round_trips_per_notification']:.1f} at the driver (API {s['by_role']['api']:.1f}, "
                f"worker {s['by_role']['worker']:.1f}; {s['terminal']} notifications)",
                "",
                "db_round_trips",
                s["target_met"],
            )
        )
    m = results.get("memory")
    if isinstance(m, dict):
        for k, key in (("worker", "worker_rss_mb"), ("api", "api_rss_mb")):
            i, p = m["idle"][k], m["loaded_peak"][k]
            rows.append(
                _row(
                    f"memory {k}: RSS",
                    f"loaded {p['rss'] / MB:.0f} MB, idle {i['rss'] / MB:.0f} MB ({p['processes']} processes, "
                    f"largest {p['max_process'] / MB:.0f} MB; PSS loaded {p['pss'] / MB:.0f} MB)",
                    "",
                    key,
                    memory.within(m, k, "rss"),
                )
            )
    rows.append(
        [
            "fairness between tenants",
            "not measured by the bench: fault row 10 (tests/faults, make test-faults) judges it",
            "",
            "holds",
            "n/a",
        ]
    )
    for key, r in results.items():
        if isinstance(r, str):
            rows.append([key, f"COULD NOT RUN: {r}", "", "", "ERROR"])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short runs: a smoke test of every benchmark")
    p.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    p.add_argument("--count", type=int, help="end-to-end notifications (default 10,000; 600 with --quick)")
    p.add_argument(
        "--default-count", type=int, help="default-pacing notifications, one sender (default 2,000; 300 with --quick)"
    )
    p.add_argument("--rounds", type=int, help="rounds of the two ratio benchmarks (default 2; 1 with --quick)")
    p.add_argument(
        "--what-if",
        action="store_true",
        help="also measure the API with the proposed fixes (bench/_patched.py) in the two ratio benchmarks",
    )
    p.add_argument("--json", type=Path, help="write every figure to this file")
    args = p.parse_args(argv)
    wanted = [w for w in args.only.split(",") if w]
    for w in wanted:
        if w not in ALL:
            p.error(f"unknown benchmark {w!r}")
    wanted = [w for w in ALL if w in wanted]  # the webhook baseline's CPU is needed by e2e: keep the order
    install_signal_handlers()
    machine = print_machine()
    q = ["--quick"] if args.quick else []
    rounds = ["--rounds", str(args.rounds)] if args.rounds else []
    rounds += ["--what-if"] if args.what_if else []
    count = args.count or (600 if args.quick else 10_000)
    default_count = args.default_count or (300 if args.quick else 2_000)
    plan = {
        "webhook": lambda: webhook_ingest.run(webhook_ingest.options(q + rounds)),
        "notify": lambda: notify_accept.run(notify_accept.options(q + rounds)),
        "burst": lambda: burst.run(burst.options(q)),
        "e2e": lambda: end_to_end.run(end_to_end.parser().parse_args(["--count", str(count)])),
        "e2e-default": lambda: end_to_end.run(
            end_to_end.parser().parse_args(["--count", str(default_count), "--tenants", "1", "--default-pacing"])
        ),
        "sql": lambda: sql_trace.run(100 if args.quick else 300),
        "memory": lambda: memory.run(
            memory.parser().parse_args(["--count", "300", "--duration", "3"] if args.quick else [])
        ),
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
    rows = summary_rows(results)
    judged = [r for r in rows if r[4] in ("PASS", "FAIL")]
    print()
    print(
        f"# Goals of issue 13 ({'quick run, ' if args.quick else ''}{time.monotonic() - started:.0f} s; "
        f"{machine['nproc']} CPUs {machine['cpu']}, {machine['mem_gib']} GiB; load average at start "
        f"{machine['loadavg'][0]:.2f}; targets in bench/targets.py)"
    )
    print(fmt_table(["goal", "measured", "baseline, same run", "target", "verdict"], rows))
    print(f"{sum(r[4] == 'PASS' for r in judged)} of {len(judged)} judged goals pass")
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
