"""Async load generator (aiohttp), run as its own process by bench/common.py.

Sends every request of a file exactly once (one per line: path, per-request header values, body,
tab-separated), then prints one `BENCH {json}` line: counts by status, latency percentiles,
duration. Bounded by --max-seconds: requests not sent by then are counted as `unsent`. Only
127.0.0.1 is contacted.

Two modes:
- closed loop (default): N keep-alive connections, each sends its next request when the last is
  answered; latency is from the send.
- open loop (`--rate R`): request i is scheduled at start + i/R whatever the answers do, and its
  latency is counted from that scheduled time, so a server that falls behind is charged for the
  queue it builds (no coordinated omission). Up to --connections requests are in flight; one that
  waits for a connection waits on the clock. The result also says whether the generator held the
  rate itself: the achieved send rate and how late sends left against their schedule.
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
    p.add_argument("--rate", type=float, default=0.0, help="open loop: requests per second on a fixed schedule")
    p.add_argument("--timeout", type=float, default=60.0, help="per-request total timeout in seconds")
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
            headers = {**static, **dict(zip(names, fields[1 : 1 + len(names)], strict=True))}
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
            except TimeoutError:
                statuses["timeout"] += 1
                continue
            except aiohttp.ClientError as exc:
                statuses[type(exc).__name__] += 1
                continue
            lat.append(time.perf_counter() - t0)

    lags: list[float] = []  # open loop: how late each send left against its schedule

    async def scheduled(session: aiohttp.ClientSession, path: str, headers: dict, body: bytes, due: float) -> None:
        lags.append(time.perf_counter() - due)
        try:
            async with session.post(args.base_url + path, data=body, headers=headers) as resp:
                await resp.read()
                statuses[str(resp.status)] += 1
        except TimeoutError:
            statuses["timeout"] += 1
            return
        except aiohttp.ClientError as exc:
            statuses[type(exc).__name__] += 1
            return
        lat.append(time.perf_counter() - due)

    async def open_loop(session: aiohttp.ClientSession) -> tuple[float, float]:
        nonlocal next_i
        tasks = []
        t0 = time.perf_counter()
        deadline = t0 + args.max_seconds
        while next_i < len(reqs):
            due = t0 + next_i / args.rate
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            elif now > deadline:
                break
            # Everything already due goes now: a late wake-up must not thin out the schedule.
            now = time.perf_counter()
            while next_i < len(reqs) and t0 + next_i / args.rate <= now:
                path, headers, body = reqs[next_i]
                tasks.append(asyncio.ensure_future(scheduled(session, path, headers, body, t0 + next_i / args.rate)))
                next_i += 1
        sending = time.perf_counter() - t0
        await asyncio.gather(*tasks)
        return time.perf_counter() - t0, sending

    send_seconds = 0.0

    async def run() -> float:
        nonlocal send_seconds
        conn = aiohttp.TCPConnector(limit=args.connections)
        timeout = aiohttp.ClientTimeout(total=args.timeout)
        async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
            if args.rate > 0:
                took, send_seconds = await open_loop(session)
                return took
            t0 = time.perf_counter()
            await asyncio.gather(*(one(session, time.monotonic() + args.max_seconds) for _ in range(args.connections)))
            return time.perf_counter() - t0

    cpu0 = time.process_time()
    took = asyncio.run(run())
    cpu = time.process_time() - cpu0
    lat.sort()
    lags.sort()

    def pct(q: float) -> float:
        return round(lat[min(len(lat) - 1, int(len(lat) * q / 100))] * 1000, 2) if lat else 0.0

    print(
        "BENCH "
        + json.dumps(
            {
                "sent": next_i,
                "unsent": len(reqs) - next_i,
                "seconds": took,
                "rps": len(lat) / took if took else 0.0,
                "statuses": dict(statuses),
                "p50_ms": pct(50),
                "p90_ms": pct(90),
                "p99_ms": pct(99),
                "max_ms": round(lat[-1] * 1000, 2) if lat else 0.0,
                "p95_ms": pct(95),
                "answered": len(lat),
                "loadgen_cpu_s": round(cpu, 3),
                **(
                    {
                        "rate_asked": args.rate,
                        # n sends over the time the schedule gives them: (n - 1) / rate when held.
                        "rate_sent": (next_i - 1) / send_seconds if send_seconds > 0 and next_i > 1 else 0.0,
                        "send_lag_p95_ms": round(lags[min(len(lags) - 1, int(len(lags) * 0.95))] * 1000, 2)
                        if lags
                        else 0.0,
                        "send_lag_max_ms": round(lags[-1] * 1000, 2) if lags else 0.0,
                    }
                    if args.rate > 0
                    else {}
                ),
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
