"""Async load generator (aiohttp), run as its own process by bench/common.py.

Sends every request of a file exactly once (one per line: path, per-request header values, body,
tab-separated) over N keep-alive connections, then prints one `BENCH {json}` line: counts by
status, latency percentiles, duration. Bounded by --max-seconds: requests not sent by then are
counted as `unsent`. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from urllib.parse import urlsplit


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("base_url")
    p.add_argument("file")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--headers", default="", help="comma-separated names of the per-request header columns")
    p.add_argument("--static", default="{}", help="JSON object of headers sent with every request")
    p.add_argument("--max-seconds", type=float, default=600.0)
    args = p.parse_args()
    if urlsplit(args.base_url).hostname != "127.0.0.1":
        sys.exit("loadgen only sends to 127.0.0.1")

    import aiohttp

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    names = [n for n in args.headers.split(",") if n]
    static = json.loads(args.static)
    reqs = []
    with open(args.file) as fh:
        for line in fh:
            fields = line.rstrip("\n").split("\t")
            headers = {**static, **dict(zip(names, fields[1:1 + len(names)]))}
            reqs.append((fields[0], headers, fields[1 + len(names)].encode()))

    statuses: Counter[str] = Counter()
    lat: list[float] = []
    next_i = 0

    async def one(session: aiohttp.ClientSession, deadline: float) -> None:
        nonlocal next_i
        while next_i < len(reqs) and time.monotonic() < deadline:
            path, headers, body = reqs[next_i]
            next_i += 1
            t0 = time.perf_counter()
            try:
                async with session.post(args.base_url + path, data=body, headers=headers) as resp:
                    await resp.read()
                    statuses[str(resp.status)] += 1
            except asyncio.TimeoutError:
                statuses["timeout"] += 1
                continue
            except aiohttp.ClientError as exc:
                statuses[type(exc).__name__] += 1
                continue
            lat.append(time.perf_counter() - t0)

    async def run() -> float:
        conn = aiohttp.TCPConnector(limit=args.connections)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as session:
            t0 = time.perf_counter()
            await asyncio.gather(*(one(session, time.monotonic() + args.max_seconds) for _ in range(args.connections)))
            return time.perf_counter() - t0

    took = asyncio.run(run())
    lat.sort()

    def pct(q: float) -> float:
        return round(lat[min(len(lat) - 1, int(len(lat) * q / 100))] * 1000, 2) if lat else 0.0

    print("BENCH " + json.dumps({
        "sent": next_i, "unsent": len(reqs) - next_i, "seconds": took, "rps": len(lat) / took if took else 0.0,
        "statuses": dict(statuses), "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
        "max_ms": round(lat[-1] * 1000, 2) if lat else 0.0}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
