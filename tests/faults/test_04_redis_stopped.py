"""Row 4: Redis stopped.

The stack runs on a throw-away redis-server. Redis is first hung (SIGSTOP: connections accepted by the
kernel, never answered, so only the client timeouts end a call) and then killed (connections refused).
Pass: POST /v1/notifications still answers 202 (the outbox is in PostgreSQL); no request takes longer
than the Redis timeouts allow; once a new Redis is up, the queue drains.

The bound: a request meets Redis once (the API rate limiter, with a 0.5 s connect and 1.0 s socket
timeout, app/core/ratelimit.py); the enqueue after commit runs in the background sender thread
(app/core/queue.py), not in the request. REDIS_BOUND is kept at 2 x 1.0 s, plus 1 s for the request
itself on a loaded 2-core machine, the bound from when the enqueue was in the request too.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.faults.support import (
    RedisServer,
    Stack,
    battery_tenant,
    notification_body,
    percentile,
    report,
    scale,
    sends_per_notification,
    wait_terminal,
)

REDIS_BOUND = 2 * 1.0 + 1.0


async def post_timed(
    http: httpx.AsyncClient, headers: dict[str, str], bodies: list[dict]
) -> tuple[list[str], list[float], list[int]]:
    ids, times, codes = [], [], []
    for body in bodies:  # one at a time: each request's own latency
        t0 = time.monotonic()
        r = await http.post("/v1/notifications", json=body, headers=headers)
        times.append(time.monotonic() - t0)
        codes.append(r.status_code)
        if r.status_code == 202:
            ids.append(r.json()["id"])
    return ids, times, codes


async def test_redis_stopped_accepts_and_drains(client, emulator, tmp_path):
    hung_posts, down_posts = scale(50, 3), scale(300, 3)
    started = time.monotonic()
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    stack = Stack(tmp_path, "f04", NOTIFYGW_REDIS_URL=redis_server.url)
    try:
        t = await battery_tenant(client, emulator, stack.api_url)
        stack.start_api()
        stack.start_worker(threads=8)
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            up_ids, up_times, _ = await post_timed(http, t.sender, [notification_body(i) for i in range(3)])
            redis_server.pause()
            hung_ids, hung_times, hung_codes = await post_timed(
                http, t.sender, [notification_body(100 + i) for i in range(hung_posts)]
            )
            redis_server.resume()
            redis_server.stop()
            down_ids, down_times, down_codes = await post_timed(
                http, t.sender, [notification_body(1000 + i) for i in range(down_posts)]
            )
            await asyncio.sleep(2)
            redis_server.start()  # a new, empty Redis on the same port
            restarted = time.monotonic()
        ids = up_ids + hung_ids + down_ids
        counts = await wait_terminal(ids, timeout=scale(600, 120), emulator=emulator)
        drained_after = time.monotonic() - restarted
    finally:
        stack.close()
        redis_server.stop()

    per = sends_per_notification(emulator, t.account["account_sid"])
    report(
        4,
        "Redis stopped",
        posts_redis_hung=len(hung_codes),
        posts_redis_down=len(down_codes),
        codes_hung=sorted(set(hung_codes)),
        codes_down=sorted(set(down_codes)),
        latency_up_max_s=round(max(up_times), 3),
        latency_hung_p50_s=round(percentile(hung_times, 50), 3),
        latency_hung_max_s=round(max(hung_times), 3),
        latency_down_p50_s=round(percentile(down_times, 50), 3),
        latency_down_max_s=round(max(down_times), 3),
        bound_s=REDIS_BOUND,
        statuses=dict(counts),
        drained_seconds_after_restart=round(drained_after, 1),
        lost=len(set(ids) - set(per)),
        duplicates=sum(per.values()) - len(per),
        wall_seconds=round(time.monotonic() - started, 1),
    )
    assert set(hung_codes) == {202} and set(down_codes) == {202}, "accepted while Redis is down"
    assert max(hung_times + down_times) < REDIS_BOUND, "no request hangs past the Redis timeout"
    assert sum(counts.values()) == len(ids) and set(counts) <= {"read", "delivered"}, counts
    assert set(per) == set(ids) and set(per.values()) == {1}, "the queue drained: every one sent, once"
