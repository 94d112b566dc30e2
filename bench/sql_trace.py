"""Database and Redis round trips per request and per job, over a short end-to-end run.

    .venv/bin/python bench/sql_trace.py               # 300 notifications, 1 tenant
    .venv/bin/python bench/sql_trace.py --count 1000

Runs the same stack as bench/end_to_end.py, but the API and the worker run with bench/_tracer.py
installed: every SQL statement (by verb and table), transaction event and Redis command is counted
against the request route or the Dramatiq actor that issued it. Prints, for each route and actor,
how many times it ran and the average number of each kind of round trip per run. Not a timing
benchmark (the tracer costs a little per statement): it explains the timings.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import PY, HERE, Stack, install_signal_handlers, log  # noqa: E402


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
        head = (f"\n### {ctx}: {n} runs" + (f", {sql / n:.1f} SQL statements, {tx / n:.1f} transaction events, "
                                              f"{redis / n:.1f} Redis commands per run" if n else
                                              f" ({total} round trips, not per request/job)"))
        out.append(head)
        if notifications:
            out.append(f"per notification: {sql / notifications:.2f} SQL, {tx / notifications:.2f} TX, "
                       f"{redis / notifications:.2f} Redis")
        for kind, v in c.most_common():
            out.append(f"  {v / n if n else v:8.2f}  {kind}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--tenants", type=int, default=1)
    args = p.parse_args(argv)
    install_signal_handlers()

    from bench import end_to_end

    stack = Stack("sql-trace", worker=True, keep_logs=False,
                  api_cmd=[PY, str(HERE / "_tracer.py"), "serve"],
                  worker_cmd=[PY, "-m", "dramatiq", "bench._tracer_worker"])
    trace_dir = stack.tmp / "trace"
    trace_dir.mkdir()
    stack.extra_env["BENCH_TRACE_DIR"] = str(trace_dir)
    with stack:
        tenants = [stack.wire_tenant(f"Bench trace {i + 1}") for i in range(args.tenants)]
        time.sleep(1.5)
        before_calls, before = merge(trace_dir)  # setup traffic, subtracted below
        res = end_to_end.flow(stack, tenants, args.count, connections=32, max_wait=600)
        log(f"[sql-trace] {res['terminal']} of {res['count']} terminal in {res['seconds']:.1f} s; waiting for the counters")
        time.sleep(2.5)
        calls, counts = merge(trace_dir)
    calls.subtract(before_calls)
    for ctx, c in before.items():
        counts[ctx].subtract(c)
    counts = {k: collections.Counter({kk: vv for kk, vv in v.items() if vv > 0}) for k, v in counts.items()}
    counts = {k: v for k, v in counts.items() if v}
    print(f"\n## Round trips per request / job ({args.count} notifications, {res['statuses']})")
    print(report(calls, counts, res["terminal"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
