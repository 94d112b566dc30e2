"""A burst of signed status callbacks at a fixed arrival rate (open loop), into the baseline, then notifygw.

    .venv/bin/python bench/burst.py               # 500/s for 10 s
    .venv/bin/python bench/burst.py --quick       # 500/s for 4 s

Issue 13: webhook bursts of 500 requests/s must be answered with p95 <= 50 ms and no errors. The
load is open loop (bench/loadgen.py --rate): request i leaves at start + i/rate whatever the server
does, and its latency is counted from that scheduled time, so a server that falls behind is
charged for the queue it builds. Each callback is signed and unique (its own MessageSid and
I-Twilio-Idempotency-Token), as in bench/webhook_ingest.py.

The generator must hold the rate by itself, so the baseline (bench/baselines/webhook_app.py) is
driven first: the run is valid only if the generator sent at >= 98 % of the asked rate there with
no errors and a p95 within the target. Then notifygw gets the same burst. The worker is not
running by default (`--with-worker` runs it): the figures are the ingest path's answers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import webhook_ingest
from bench.common import (
    REDIS_URL,
    Proc,
    Stack,
    fmt_table,
    group_cpu_seconds,
    install_signal_handlers,
    log,
    print_machine,
    run_loadgen,
    verdict,
    write_requests,
)
from bench.targets import BURST_RATE, BURST_SECONDS, GENERATOR_MIN_RATE_SHARE, TARGETS

IN_FLIGHT = 512  # at most this many requests open at once; one that waits for a connection waits on the clock
TIMEOUT_S = 10.0


def _errors(res: dict[str, Any]) -> int:
    return sum(v for k, v in res["statuses"].items() if not k.isdigit() or not 200 <= int(k) < 300) + res["unsent"]


def one_burst(
    stack: Stack, tenant: Any, name: str, url: str, proc: Proc, rate: float, seconds: float
) -> dict[str, Any]:
    warm = stack.tmp / f"{name}-burst-warm.tsv"
    write_requests(warm, webhook_ingest.callback_rows(tenant, url, max(50, int(rate))))
    run_loadgen(
        url,
        warm,
        per_request_headers=webhook_ingest.PER_REQUEST,
        static_headers=webhook_ingest.STATIC,
        connections=32,
        max_seconds=60,
        tmp=stack.tmp,
    )
    data = stack.tmp / f"{name}-burst.tsv"
    n = write_requests(data, webhook_ingest.callback_rows(tenant, url, int(rate * seconds)))
    time.sleep(1.0)
    cpu0 = group_cpu_seconds(proc.pgid)
    res = run_loadgen(
        url,
        data,
        per_request_headers=webhook_ingest.PER_REQUEST,
        static_headers=webhook_ingest.STATIC,
        connections=IN_FLIGHT,
        max_seconds=seconds * 3 + 30,
        rate=rate,
        timeout=TIMEOUT_S,
        tmp=stack.tmp,
    )
    cpu = group_cpu_seconds(proc.pgid) - cpu0
    if not proc.alive():
        raise RuntimeError(f"{name} died during the burst:\n{proc.tail()}")
    res.update(requests=n, errors=_errors(res), server_cpu_s=round(cpu, 2), cpu_us_per_req=1e6 * cpu / max(1, n))
    log(
        f"[burst] {name:9s} {n:,} at {rate:.0f}/s: sent at {res['rate_sent']:.0f}/s (send lag p95 "
        f"{res['send_lag_p95_ms']:.1f} ms, max {res['send_lag_max_ms']:.1f}), p50 {res['p50_ms']:.1f} ms, "
        f"p95 {res['p95_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms, max {res['max_ms']:.0f} ms, "
        f"errors {res['errors']} {res['statuses']}, server CPU {res['cpu_us_per_req']:.0f} us/req"
    )
    return res


def run(args: argparse.Namespace) -> dict[str, Any]:
    with Stack("burst", worker=args.with_worker, keep_logs=args.keep_logs) as stack:
        tenant = stack.wire_tenant("Bench burst")
        stack.create_baseline_tables()
        baseline = stack.spawn_baseline(
            "baseline",
            "bench.baselines.webhook_app:create_app",
            {
                "BENCH_BASELINE_DSN": stack.db.dsn,
                "BENCH_BASELINE_REDIS_URL": REDIS_URL,
                "BENCH_BASELINE_PREFIX": f"{stack.namespace}_baseline",
                "BENCH_BASELINE_TOKENS": json.dumps({tenant.account["account_sid"]: tenant.account["auth_token"]}),
            },
        )
        base = one_burst(
            stack, tenant, "baseline", f"http://127.0.0.1:{baseline.port}", baseline, args.rate, args.seconds
        )
        app = one_burst(stack, tenant, "notifygw", stack.api_url, stack.procs["api"], args.rate, args.seconds)
    p95_t, err_t = TARGETS["burst_p95_ms"], TARGETS["burst_errors"]
    generator_ok = (
        base["rate_sent"] >= GENERATOR_MIN_RATE_SHARE * args.rate and base["errors"] == 0 and p95_t.ok(base["p95_ms"])
    )
    summary = {
        "rate": args.rate,
        "seconds": args.seconds,
        "baseline": base,
        "app": app,
        "generator_ok": generator_ok,
        "target_met": generator_ok and p95_t.ok(app["p95_ms"]) and err_t.ok(app["errors"]),
    }
    report(summary)
    return summary


def report(s: dict[str, Any]) -> None:
    rows = [
        [
            name,
            f"{r['requests']:,}",
            f"{r['rate_sent']:.0f}",
            f"{r['send_lag_p95_ms']:.1f}",
            f"{r['p50_ms']:.1f}",
            f"{r['p95_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            f"{r['max_ms']:.0f}",
            r["errors"],
            f"{r['cpu_us_per_req']:.0f}",
        ]
        for name, r in (("baseline", s["baseline"]), ("notifygw", s["app"]))
    ]
    print()
    print(f"## Burst: {s['rate']:.0f} signed callbacks/s for {s['seconds']:g} s, open loop, latency from schedule")
    print(
        fmt_table(
            [
                "server",
                "requests",
                "sent/s",
                "send lag p95 ms",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "max ms",
                "errors",
                "server CPU us/req",
            ],
            rows,
        )
    )
    b = s["baseline"]
    print(
        f"generator check against the baseline: sent at {b['rate_sent']:.0f}/s of {s['rate']:.0f} asked "
        f"(>= {GENERATOR_MIN_RATE_SHARE:.0%}), {b['errors']} errors, p95 {b['p95_ms']:.1f} ms: "
        f"{'HELD' if s['generator_ok'] else 'NOT HELD (the notifygw figures are not a valid verdict)'}"
    )
    a = s["app"]
    print(
        f"notifygw p95 {a['p95_ms']:.1f} ms, target {TARGETS['burst_p95_ms'].text()}; errors {a['errors']}, "
        f"target 0: {verdict(s['target_met'])}"
    )
    print(flush=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=BURST_RATE, help=f"callbacks per second (default {BURST_RATE:g})")
    p.add_argument("--seconds", type=float, default=BURST_SECONDS, help=f"burst length (default {BURST_SECONDS:g})")
    p.add_argument("--quick", action="store_true", help="a 4 s burst")
    p.add_argument("--with-worker", action="store_true", help="also run `notifygw worker`")
    p.add_argument("--keep-logs", action="store_true")
    p.add_argument("--json", type=Path)
    return p


def options(argv: list[str] | None = None) -> argparse.Namespace:
    args = parser().parse_args(argv)
    if args.quick:
        args.seconds = min(args.seconds, 4.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    install_signal_handlers()
    print_machine()
    summary = run(args)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
