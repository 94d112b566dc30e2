"""What one accepted notification costs the API: database round trips, Redis commands and CPU.

    .venv/bin/python bench/accept_cost.py                  # 2,000 accepts, 8 connections
    .venv/bin/python bench/accept_cost.py --count 4000 --idempotency

Not a throughput benchmark: on a shared machine requests/s move with the neighbours, the work per
request does not. Starts the emulator and the API (no worker: the accept path alone) on a fresh
database, wires one tenant, warms up, then sends `--count` template notifications (a new phone
each, as bench/notify_accept.py) over `--connections` keep-alive connections and reports, per
accepted request:

- database round trips, counted on the wire by bench/pgproxy.py in front of PostgreSQL (every
  simple Query, Sync and Flush: BEGIN and COMMIT count);
- the API's CPU (utime + stime of its process group, from /proc), in ms;
- with `--trace`, the API runs under bench/_tracer.py and the SQL statements and Redis commands
  per request are printed too (the tracer costs CPU: its run's CPU figure is not comparable).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import HERE, PY, Stack, group_cpu_seconds, install_signal_handlers, log
from bench.notify_accept import PATH, notification_rows
from bench.pgproxy import CountingProxy
from bench.sql_trace import merge


async def _drive(url: str, headers: dict[str, str], bodies: list[str], connections: int, idem: bool) -> dict[int, int]:
    import aiohttp

    statuses: dict[int, int] = {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            h = dict(headers)
            if idem:
                h["Idempotency-Key"] = uuid.uuid4().hex
            async with session.post(url + PATH, data=body, headers=h) as r:
                await r.read()
                statuses[r.status] = statuses.get(r.status, 0) + 1

    conn = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=conn) as session:
        await asyncio.gather(*(worker(session) for _ in range(connections)))
    return statuses


def run(count: int, connections: int, idem: bool, trace: bool) -> dict:
    stack = Stack("accept-cost", worker=False, api_cmd=[PY, str(HERE / "_tracer.py"), "serve"] if trace else None)
    trace_dir = stack.tmp / "trace"
    trace_dir.mkdir()
    stack.extra_env["BENCH_TRACE_DIR"] = str(trace_dir)
    proxy = CountingProxy({"api": 0})
    proxy.start()
    stack.api_env["NOTIFYGW_DATABASE_URL"] = stack.db.url.replace(":5432/", f":{proxy.ports['api']}/")
    try:
        with stack:
            tenant = stack.wire_tenant("Bench accept cost")
            headers = {"Content-Type": "application/json", **tenant.auth}
            warm = [b for _, _, b in notification_rows(300, start=9_000_000)]
            asyncio.run(_drive(stack.api_url, headers, warm, connections, idem))
            time.sleep(1.0)
            bodies = [b for _, _, b in notification_rows(count, start=0)]
            pgid = stack.procs["api"].pgid
            _, before = merge(trace_dir)
            wire0, cpu0, t0 = proxy.snapshot()["api"], group_cpu_seconds(pgid), time.monotonic()
            statuses = asyncio.run(_drive(stack.api_url, headers, bodies, connections, idem))
            wire1, cpu1, t1 = proxy.snapshot()["api"], group_cpu_seconds(pgid), time.monotonic()
            time.sleep(1.5 if trace else 0)
            _, after = merge(trace_dir)
            stored = stack.db.scalar("SELECT count(*) FROM notifications")
    finally:
        proxy.stop()
    accepted = statuses.get(202, 0)
    n = max(1, accepted)
    per_kind: dict[str, float] = {}
    ctx = f"api: POST {PATH}"
    for kind, v in after.get(ctx, {}).items():
        d = v - before.get(ctx, {}).get(kind, 0)
        if d:
            per_kind[kind] = d / n
    res = {
        "count": count,
        "connections": connections,
        "idempotency_key": idem,
        "traced": trace,
        "statuses": statuses,
        "stored_notifications": stored,
        "seconds": t1 - t0,
        "round_trips_per_accept": (wire1["round_trips"] - wire0["round_trips"]) / n,
        "wire_per_accept": {k: (wire1.get(k, 0) - wire0.get(k, 0)) / n for k in wire1 if k != "connections"},
        "api_cpu_ms_per_accept": (cpu1 - cpu0) * 1000 / n,
        "trace_per_accept": dict(sorted(per_kind.items(), key=lambda kv: -kv[1])),
    }
    print(f"\n## Accept cost ({count} accepts, {connections} connections, Idempotency-Key: {idem}, traced: {trace})")
    print(f"statuses {statuses}; {res['seconds']:.1f} s ({accepted / res['seconds']:.0f} req/s, machine shared)")
    print(f"database round trips per accept: {res['round_trips_per_accept']:.2f}  (wire {res['wire_per_accept']})")
    print(f"API CPU per accept: {res['api_cpu_ms_per_accept']:.2f} ms (utime + stime of the API process group)")
    for kind, v in res["trace_per_accept"].items():
        print(f"  {v:6.2f}  {kind}")
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--idempotency", action="store_true", help="send a fresh Idempotency-Key with each request")
    p.add_argument(
        "--trace", action="store_true", help="run the API under bench/_tracer.py (SQL and Redis per request)"
    )
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    install_signal_handlers()
    log("[accept-cost] starting")
    res = run(args.count, args.connections, args.idempotency, args.trace)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
