"""Webhook ingest: signed Twilio status callbacks into `notifygw serve`, against a minimal baseline.

    .venv/bin/python bench/webhook_ingest.py            # 2 rounds x (3 s warm-up + 10 s) per server
    .venv/bin/python bench/webhook_ingest.py --quick    # 1 round of 3 s

Starts the emulator and the API on a fresh database, wires one tenant through the public API (its
Twilio auth token is verified against the emulator and sealed at rest), and the baseline
(bench/baselines/webhook_app.py) under the same uvicorn settings. Pre-signs status callbacks
(`delivered`, 13 fields, with the `?n=&a=` query notifygw puts on its StatusCallback URLs), each
with a unique MessageSid and I-Twilio-Idempotency-Token, and drives both servers with wrk at 32
connections (a Lua script cycles through the pre-built requests), alternating the order each
round. Prints throughput, p50/p99, CPU per request and the ratio. Targets (bench/targets.py):
>= 0.8x the baseline's throughput, p99 <= 1.5x the baseline's p99. The worker is not running by default (`--with-worker` runs it), so
the figures are the ingest path alone, as for the baseline.
"""

from __future__ import annotations

import argparse
import itertools
import json
import secrets
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.baselines.webhook_app import twilio_signature
from bench.common import (
    REDIS_URL,
    Stack,
    Tenant,
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

PATH = "/webhooks/twilio/status"
PER_REQUEST = ("X-Twilio-Signature", "I-Twilio-Idempotency-Token")
STATIC = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "TwilioProxy/1.1", "X-Home-Region": "us1"}
_RUN_TAG = secrets.randbits(32)
_seq = itertools.count()
WHAT_IF = "no-owner-query"  # the one proposed fix not made (the 403 for another tenant's SID is wanted)


def callback_rows(tenant: Tenant, base_url: str, n: int):
    """n signed `delivered` callbacks, each for a new MessageSid, as Twilio (and the emulator) send them."""
    account = tenant.account
    for _ in range(n):
        i = next(_seq)
        sid = f"SM{_RUN_TAG:08x}{i:024x}"
        to = f"+1415{2000000 + i % 8000000:07d}"
        form = [
            ("AccountSid", account["account_sid"]),
            ("ApiVersion", "2010-04-01"),
            ("ChannelInstallSid", "XE" + "9a" * 16),
            ("ChannelPrefix", "whatsapp"),
            ("ChannelToAddress", to),
            ("From", account["whatsapp_from"]),
            ("MessageSid", sid),
            ("MessageStatus", "delivered"),
            ("SmsSid", sid),
            ("SmsStatus", "delivered"),
            ("To", f"whatsapp:{to}"),
            ("EventType", "DELIVERED"),
            ("RawDlrDoneDate", "2611270101"),
        ]
        path = f"{PATH}?n={uuid.uuid4()}&a={uuid.uuid4()}"
        signature = twilio_signature(account["auth_token"], base_url + path, form)
        token = f"{secrets.token_hex(8)}-{i:024x}"
        yield path, (signature, token), urlencode(form)


def run(args: argparse.Namespace) -> dict:
    with Stack("webhook", worker=args.with_worker, keep_logs=args.keep_logs) as stack:
        tenant = stack.wire_tenant("Bench webhooks")
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
        urls = {"notifygw": stack.api_url, "baseline": f"http://127.0.0.1:{baseline.port}"}
        procs = {"notifygw": stack.procs["api"], "baseline": baseline}
        if args.what_if:
            patched = stack.spawn_patched(args.what_if)
            urls = {
                "notifygw": urls["notifygw"],
                "what-if": f"http://127.0.0.1:{patched.port}",
                "baseline": urls["baseline"],
            }
            procs = {"notifygw": procs["notifygw"], "what-if": patched, "baseline": baseline}
        idle = {name: group_mem(p.pgid) for name, p in procs.items()}

        def maker(name: str):
            def make(kind: str, seconds: float) -> tuple[Path, int]:
                path = stack.tmp / f"{name}-{kind}.tsv"
                n = write_requests(path, callback_rows(tenant, urls[name], size_for(seconds, args.rate_guess)))
                return path, n

            return make

        log(
            f"[webhook] tenant {tenant.id}, AccountSid {tenant.account['account_sid']} (auth token sealed at rest); "
            + ", ".join(f"{k} at {u}" for k, u in urls.items())
        )
        results = compare_rounds(
            {name: maker(name) for name in urls},
            urls,
            procs,
            rounds=args.rounds,
            warmup=args.warmup,
            duration=args.duration,
            connections=args.connections,
            threads=args.threads,
            per_request_headers=PER_REQUEST,
            static_headers={name: STATIC for name in urls},
            tmp=stack.tmp,
            label="webhook",
        )
        summary = summarize_pair(results, "notifygw", "baseline")
        if args.what_if:
            summary["what_if"] = {"patches": args.what_if, **summarize_pair(results, "what-if", "baseline")}
        time.sleep(1.0)  # requests in flight when wrk stopped finish; then one consistent snapshot
        counts = stack.db.fetch(
            "SELECT (SELECT count(*) FROM raw_events WHERE kind = 'status') AS a, "
            "(SELECT count(*) FROM bench_baseline_events) AS b"
        )[0]
        stored, stored_base = counts["a"], counts["b"]
        loaded = {name: group_mem(p.pgid) for name, p in procs.items()}
    summary.update(
        stored_app=stored,
        stored_baseline=stored_base,
        rounds=results,
        rss_idle_mib={k: round(v.rss_mib, 1) for k, v in idle.items()},
        rss_loaded_mib={k: round(v.rss_mib, 1) for k, v in loaded.items()},
        target_met=TARGETS["webhook_ratio"].ok(summary["ratio"])
        and TARGETS["webhook_p99_ratio"].ok(summary["p99_ratio"]),
    )
    print_pair(
        "Webhook ingest (signed Twilio status callbacks, 32 connections)",
        summary,
        ratio_key="webhook_ratio",
        p99_key="webhook_p99_ratio",
    )
    if args.what_if:
        print_pair(
            f"Webhook ingest, what-if ({args.what_if})",
            summary["what_if"],
            ratio_key="webhook_ratio",
            p99_key="webhook_p99_ratio",
        )
    print(
        f"raw events stored by notifygw: {stored}; rows stored by the baseline: {stored_base}; "
        f"API RSS idle {idle['notifygw'].rss_mib:.0f} MiB, after load {loaded['notifygw'].rss_mib:.0f} MiB"
    )
    return summary


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_args(p)
    p.add_argument("--with-worker", action="store_true", help="also run `notifygw worker` (processing the events)")
    p.add_argument(
        "--rate-guess",
        type=float,
        default=8000.0,
        help="requests/s to pre-sign for (default 8000; beyond it requests repeat and are reported)",
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
