"""Notify accept: `POST /v1/notifications` into `notifygw serve`, against a minimal baseline.

    .venv/bin/python bench/notify_accept.py            # 2 rounds x (3 s warm-up + 10 s) per server
    .venv/bin/python bench/notify_accept.py --quick    # 1 round of 3 s

Starts the emulator and the API on a fresh database, wires one tenant through the public API
(template `order_shipped`, API rate limit raised to 100,000/s so the limiter answers but never
refuses), and the baseline (bench/baselines/notify_app.py: one INSERT and one Redis LPUSH) under
the same uvicorn settings. Drives both with wrk at 32 connections through pre-built template
requests, each to a new phone number (so each creates its contact), alternating the order each
round. Prints throughput, p50/p99, CPU per request and the ratio. Targets (bench/targets.py):
>= 0.8x the baseline's throughput, p99 <= 1.5x the baseline's p99. The worker is not running by default (`--with-worker` runs it):
the figures are the accept path alone, as for the baseline.
"""

from __future__ import annotations

import argparse
import itertools
import json
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    REDIS_URL,
    TEMPLATE_KEY,
    Stack,
    common_args,
    compare_rounds,
    group_mem,
    install_signal_handlers,
    log,
    print_machine,
    print_pair,
    size_for,
    summarize_pair,
    write_requests,
)
from bench.targets import TARGETS

PATH = "/v1/notifications"
STATIC = {"Content-Type": "application/json"}
_seq = itertools.count()
WHAT_IF = ""  # every fix measured here is made; --what-if runs nothing extra


def phone(i: int) -> str:
    """+1 415 2000000 + i: valid US numbers (every 415 exchange from 200 to 999 is), none of them magic."""
    return f"+1415{2000000 + i % 8000000:07d}"


def notification_rows(n: int, start: int | None = None):
    for _ in range(n):
        i = next(_seq) if start is None else start + _
        body = {
            "to": {"phone": phone(i)},
            "template": TEMPLATE_KEY,
            "variables": {"name": "Ava", "order": str(18000 + i % 1000)},
            "metadata": {"bench": "accept"},
        }
        yield PATH, (), json.dumps(body, separators=(",", ":"))


def run(args: argparse.Namespace) -> dict:
    with Stack("notify", worker=args.with_worker, keep_logs=args.keep_logs) as stack:
        tenant = stack.wire_tenant("Bench notify")
        stack.create_baseline_tables()
        baseline_key = "bench_" + secrets.token_urlsafe(24)
        baseline = stack.spawn_baseline(
            "baseline",
            "bench.baselines.notify_app:create_app",
            {
                "BENCH_BASELINE_DSN": stack.db.dsn,
                "BENCH_BASELINE_REDIS_URL": REDIS_URL,
                "BENCH_BASELINE_PREFIX": f"{stack.namespace}_baseline",
                "BENCH_BASELINE_API_KEY": baseline_key,
            },
        )
        urls = {"notifygw": stack.api_url, "baseline": f"http://127.0.0.1:{baseline.port}"}
        procs = {"notifygw": stack.procs["api"], "baseline": baseline}
        static = {
            "notifygw": {**STATIC, **tenant.auth},
            "baseline": {**STATIC, "Authorization": f"Bearer {baseline_key}"},
        }
        if args.what_if:
            patched = stack.spawn_patched(args.what_if)
            urls = {
                "notifygw": urls["notifygw"],
                "what-if": f"http://127.0.0.1:{patched.port}",
                "baseline": urls["baseline"],
            }
            procs = {"notifygw": procs["notifygw"], "what-if": patched, "baseline": baseline}
            static["what-if"] = static["notifygw"]
        idle = {name: group_mem(p.pgid) for name, p in procs.items()}

        def make(kind: str, seconds: float) -> tuple[Path, int]:
            path = stack.tmp / f"{kind}-{secrets.token_hex(3)}.tsv"
            return path, write_requests(path, notification_rows(size_for(seconds, args.rate_guess)))

        log(f"[notify] tenant {tenant.id}; " + ", ".join(f"{k} at {u}" for k, u in urls.items()))
        results = compare_rounds(
            {name: make for name in urls},
            urls,
            procs,
            rounds=args.rounds,
            warmup=args.warmup,
            duration=args.duration,
            connections=args.connections,
            threads=args.threads,
            per_request_headers=(),
            static_headers=static,
            tmp=stack.tmp,
            label="notify",
        )
        summary = summarize_pair(results, "notifygw", "baseline")
        if args.what_if:
            summary["what_if"] = {"patches": args.what_if, **summarize_pair(results, "what-if", "baseline")}
        time.sleep(1.0)  # requests in flight when wrk stopped finish; then one consistent snapshot
        counts = stack.db.fetch(
            "SELECT (SELECT count(*) FROM notifications) AS n, (SELECT count(*) FROM bench_baseline_notifications) AS b"
        )[0]
        stored, stored_base = counts["n"], counts["b"]
        # The outbox is going away (issue 13): counted only while the table exists.
        outbox = (
            stack.db.scalar("SELECT count(*) FROM outbox WHERE kind = 'notification.route'")
            if stack.db.scalar("SELECT to_regclass('outbox') IS NOT NULL")
            else None
        )
        loaded = {name: group_mem(p.pgid) for name, p in procs.items()}
    summary.update(
        stored_app=stored,
        outbox_app=outbox,
        stored_baseline=stored_base,
        rounds=results,
        rss_idle_mib={k: round(v.rss_mib, 1) for k, v in idle.items()},
        rss_loaded_mib={k: round(v.rss_mib, 1) for k, v in loaded.items()},
        target_met=TARGETS["notify_ratio"].ok(summary["ratio"])
        and TARGETS["notify_p99_ratio"].ok(summary["p99_ratio"]),
    )
    print_pair(
        "Notify accept (POST /v1/notifications, template, new phone each, 32 connections)",
        summary,
        ratio_key="notify_ratio",
        p99_key="notify_p99_ratio",
    )
    if args.what_if:
        print_pair(
            f"Notify accept, what-if ({args.what_if})",
            summary["what_if"],
            ratio_key="notify_ratio",
            p99_key="notify_p99_ratio",
        )
    print(
        f"notifications stored by notifygw: {stored} (outbox rows {outbox}); rows stored by the baseline: "
        f"{stored_base}; API RSS idle {idle['notifygw'].rss_mib:.0f} MiB, after load {loaded['notifygw'].rss_mib:.0f} MiB"
    )
    return summary


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_args(p)
    p.add_argument("--with-worker", action="store_true", help="also run `notifygw worker` (routing and sending)")
    p.add_argument(
        "--rate-guess",
        type=float,
        default=8000.0,
        help="requests/s to build requests for (default 8000; beyond it requests repeat and are reported)",
    )
    p.add_argument(
        "--what-if",
        nargs="?",
        const=WHAT_IF,
        default=None,
        metavar="PATCHES",
        help=f"also run the API with bench/_patched.py's proposed fixes (default set: {WHAT_IF})",
    )
    p.add_argument("--quick", action="store_true", help="1 round, 1 s warm-up, 3 s measured")
    return p


def options(argv: list[str] | None = None) -> argparse.Namespace:
    args = parser().parse_args(argv)
    if args.quick:
        args.rounds, args.warmup, args.duration = 1, 1.0, 3.0
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
