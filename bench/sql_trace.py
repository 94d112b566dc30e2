"""Database and Redis round trips per request and per job, over a short end-to-end run.

    .venv/bin/python bench/sql_trace.py               # 300 notifications, 1 tenant
    .venv/bin/python bench/sql_trace.py --count 1000

Runs the same stack as bench/end_to_end.py, but the API and the worker run with bench/_tracer.py
installed: every SQL statement (by verb and table), transaction event and Redis command is counted
against the request route or the Dramatiq actor that issued it. Prints, for each route and actor,
how many times it ran and the average number of each kind of round trip per run. Not a timing
benchmark (the tracer costs a little per statement): it explains the timings.

The verdict figure is counted at the driver, not from SQLAlchemy's events: the API and the worker
reach PostgreSQL through bench/pgproxy.py, which counts every round trip on the wire (a simple
Query, a Sync closing an extended-protocol exchange, or the Flush of a prepare: BEGIN and COMMIT
count, a lone autocommitted INSERT counts once, raw asyncpg included). Database round trips per notification = what the API and
the worker sent during the run / the notifications that reached a terminal state. Target
(bench/targets.py): <= 12.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import HERE, PY, Stack, install_signal_handlers, log, verdict
from bench.pgproxy import CountingProxy
from bench.targets import TARGETS


def merge(trace_dir: Path) -> tuple[collections.Counter, dict[str, collections.Counter]]:
    calls: collections.Counter[str] = collections.Counter()
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for f in trace_dir.glob("trace-*.json"):
        data = json.loads(f.read_text())
        calls.update(data["calls"])
        for ctx, c in data["counts"].items():
            counts[f"{data['role']}: {ctx}"].update(c)
    return calls, counts


def report(calls: collections.Counter, counts: dict[str, collections.Counter], notifications: int) -> str:
    out = []
    for ctx in sorted(counts, key=lambda k: -sum(counts[k].values())):
        c = counts[ctx]
        name = ctx.split(": ", 1)[1]
        n = calls.get(name, 0)
        total = sum(c.values())
        sql = sum(v for k, v in c.items() if k.startswith("SQL "))
        tx = sum(v for k, v in c.items() if k.startswith("TX "))
        redis = sum(v for k, v in c.items() if k.startswith("redis "))
        head = f"\n### {ctx}: {n} runs" + (
            f", {sql / n:.1f} SQL statements, {tx / n:.1f} transaction events, {redis / n:.1f} Redis commands per run"
            if n
            else f" ({total} round trips, not per request/job)"
        )
        out.append(head)
        if notifications:
            out.append(
                f"per notification: {sql / notifications:.2f} SQL, {tx / notifications:.2f} TX, "
                f"{redis / notifications:.2f} Redis"
            )
        for kind, v in c.most_common():
            out.append(f"  {v / n if n else v:8.2f}  {kind}")
    return "\n".join(out)


def run(count: int = 300, tenants_n: int = 1) -> dict:
    """The traced run; returns the driver-level round trips per notification and the per-context counts."""
    from bench import end_to_end

    stack = Stack(
        "sql-trace",
        worker=True,
        keep_logs=False,
        api_cmd=[PY, str(HERE / "_tracer.py"), "serve"],
        worker_cmd=[PY, "-m", "dramatiq", "bench._tracer_worker"],
    )
    trace_dir = stack.tmp / "trace"
    trace_dir.mkdir()
    stack.extra_env["BENCH_TRACE_DIR"] = str(trace_dir)
    proxy = CountingProxy({"api": 0, "worker": 0})
    proxy.start()
    # The API and the worker each reach PostgreSQL through their own counting listener.
    stack.api_env["NOTIFYGW_DATABASE_URL"] = stack.db.url.replace(":5432/", f":{proxy.ports['api']}/")
    stack.worker_env["NOTIFYGW_DATABASE_URL"] = stack.db.url.replace(":5432/", f":{proxy.ports['worker']}/")
    try:
        with stack:
            tenants = [stack.wire_tenant(f"Bench trace {i + 1}") for i in range(tenants_n)]
            time.sleep(1.5)
            before_calls, before = merge(trace_dir)  # setup traffic, subtracted below
            wire0 = proxy.snapshot()
            res = end_to_end.flow(stack, tenants, count, connections=32, max_wait=600)
            wire1 = proxy.snapshot()
            log(
                f"[sql-trace] {res['terminal']} of {res['count']} terminal in {res['seconds']:.1f} s; "
                "waiting for the counters"
            )
            time.sleep(2.5)
            calls, counts = merge(trace_dir)
    finally:
        proxy.stop()
    wire = {
        role: {k: wire1[role].get(k, 0) - wire0[role].get(k, 0) for k in wire1[role] if k != "connections"}
        for role in wire1
    }
    terminal = max(1, res["terminal"])
    per = {role: w["round_trips"] / terminal for role, w in wire.items()}
    total = sum(per.values())
    calls.subtract(before_calls)
    for ctx, c in before.items():
        counts[ctx].subtract(c)
    counts = {k: collections.Counter({kk: vv for kk, vv in v.items() if vv > 0}) for k, v in counts.items()}
    counts = {k: v for k, v in counts.items() if v}
    print(f"\n## Round trips per request / job ({count} notifications, {res['statuses']})")
    print(report(calls, counts, res["terminal"]))
    t = TARGETS["db_round_trips"]
    print(
        f"\ndatabase round trips per notification, counted at the driver (bench/pgproxy.py): {total:.1f} "
        f"(API {per['api']:.1f}, worker {per['worker']:.1f}; {res['terminal']} notifications terminal); "
        f"target {t.text()}: {verdict(t.ok(total) and res['finished'])}"
    )
    sqla = sum(
        v
        for c in counts.values()
        for k, v in c.items()
        if k.startswith(("SQL ", "TX begin", "TX commit", "TX rollback"))
    )
    print(f"(SQLAlchemy's events saw {sqla / terminal:.1f} statements + transaction events per notification)")
    return {
        "count": count,
        "terminal": res["terminal"],
        "finished": res["finished"],
        "round_trips_per_notification": total,
        "by_role": per,
        "wire": wire,
        "sqlalchemy_events_per_notification": sqla / terminal,
        "target_met": t.ok(total) and res["finished"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--tenants", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    install_signal_handlers()
    res = run(args.count, args.tenants)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
