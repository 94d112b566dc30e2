"""Row 5: PostgreSQL stopped.

The stack's API and worker reach PostgreSQL through a loopback TCP proxy; "stopped" closes the proxy's
listener (connections refused) and resets every open connection, with sends in flight (the emulator
answers after 1 s). Pass: the API and the webhooks answer 503 problem+json with Retry-After within
2 s, never 500 or 202; no Twilio call was made without a committed `sending` (each WhatsApp message
the emulator holds for an attempt is matched by a committed try of that attempt); after PostgreSQL
returns, everything completes.
"""

from __future__ import annotations

import time
from collections import Counter
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select

from app.core.db import session_factory
from app.notify.models import Attempt
from channels.emulator.callbacks import twilio_signature
from tests.faults.support import (
    Stack,
    TcpProxy,
    battery_tenant,
    flagged_notifications,
    notification_body,
    percentile,
    post_many,
    report,
    scale,
    until_sending,
    wait_terminal,
)

BOUND = 2.0


async def test_postgres_stopped_answers_503_and_never_sends_unrecorded(client, emulator, tmp_path):
    count, outage = scale(300, 12), scale(20, 3)
    started = time.monotonic()
    import os

    db_url = os.environ["NOTIFYGW_DATABASE_URL"]
    pg = urlsplit(db_url.replace("postgresql+asyncpg", "http"))
    proxy = TcpProxy(pg.port or 5432).start()
    proxied = db_url.replace(f"{pg.hostname}:{pg.port}", proxy.url_host)
    stack = Stack(tmp_path, "f05", NOTIFYGW_DATABASE_URL=proxied)
    probes: Counter[str] = Counter()
    latencies: list[float] = []
    bad: list[str] = []
    try:
        t = await battery_tenant(client, emulator, stack.api_url)
        emulator.configure(response_latency_seconds=1.0)
        stack.start_api()
        stack.start_worker(threads=8)
        ids = await post_many(stack.api_url, t.sender, [notification_body(i) for i in range(count)])
        await until_sending()
        proxy.down()

        status_url = f"{stack.api_url}/webhooks/twilio/status?n={ids[0]}&a={ids[0]}"
        params = [
            ("AccountSid", t.account["account_sid"]),
            ("MessageSid", "SM" + "0" * 32),
            ("MessageStatus", "delivered"),
        ]
        signed = {
            "X-Twilio-Signature": twilio_signature(t.account["auth_token"], status_url, params),
            "I-Twilio-Idempotency-Token": "probe",
        }
        requests = [
            (
                "POST /v1/notifications",
                "POST",
                "/v1/notifications",
                {"json": notification_body(9999), "headers": t.sender},
            ),
            ("GET /v1/notifications/{id}", "GET", f"/v1/notifications/{ids[0]}", {"headers": t.sender}),
            ("GET /v1/notifications", "GET", "/v1/notifications", {"headers": t.sender}),
            ("POST /webhooks/twilio/status", "POST", status_url, {"data": dict(params), "headers": signed}),
            (
                "POST /webhooks/sendgrid/{tenant}",
                "POST",
                f"/webhooks/sendgrid/{t.id}",
                {"content": b"[]", "headers": {"Content-Type": "application/json"}},
            ),
            ("GET /readyz", "GET", "/readyz", {}),
        ]
        deadline = time.monotonic() + outage
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            while time.monotonic() < deadline:
                for name, method, url, kw in requests:
                    t0 = time.monotonic()
                    r = await http.request(method, url, **kw)
                    elapsed = time.monotonic() - t0
                    latencies.append(elapsed)
                    probes[f"{name} {r.status_code}"] += 1
                    if not (
                        r.status_code == 503
                        and r.headers.get("content-type", "").startswith("application/problem+json")
                        and r.headers.get("retry-after")
                        and elapsed < BOUND
                    ):
                        bad.append(
                            f"{name}: {r.status_code} {r.headers.get('content-type')} "
                            f"retry-after={r.headers.get('retry-after')} {elapsed:.2f}s {r.text[:200]}"
                        )
        proxy.up()
        counts = await wait_terminal(ids, timeout=scale(600, 120), emulator=emulator)
    finally:
        stack.close()
        proxy.stop()
        emulator.configure(response_latency_seconds=0.0)

    async with session_factory()() as s:
        tries = {str(a): n for a, n in (await s.execute(select(Attempt.id, Attempt.tries))).all()}
        started_at = {str(a): t_ for a, t_ in (await s.execute(select(Attempt.id, Attempt.sending_started_at))).all()}
    calls: Counter[str] = Counter()
    for m in emulator.messages(account_sid=t.account["account_sid"]):
        calls[dict(p.split("=", 1) for p in urlsplit(m["status_callback"]).query.split("&"))["a"]] += 1
    unrecorded = [a for a, n in calls.items() if a not in tries or started_at[a] is None or n > tries[a]]
    per_notification = Counter()
    for m in emulator.messages(account_sid=t.account["account_sid"]):
        per_notification[dict(p.split("=", 1) for p in urlsplit(m["status_callback"]).query.split("&"))["n"]] += 1
    duplicated = {n for n, c in per_notification.items() if c > 1}
    flagged = await flagged_notifications()
    report(
        5,
        "PostgreSQL stopped",
        notifications=count,
        outage_seconds=outage,
        probes=dict(probes),
        probe_latency_p50_s=round(percentile(latencies, 50), 3),
        probe_latency_max_s=round(max(latencies), 3),
        bound_s=BOUND,
        not_503_or_slow=len(bad),
        twilio_calls=sum(calls.values()),
        calls_without_recorded_sending=len(unrecorded),
        statuses=dict(counts),
        duplicated=len(duplicated),
        duplicated_unflagged=len(duplicated - flagged),
        wall_seconds=round(time.monotonic() - started, 1),
    )
    assert not bad, bad[:10]
    assert not unrecorded, "a worker called Twilio without having recorded `sending`"
    assert sum(counts.values()) == count and set(counts) <= {"read", "delivered"}, counts
    assert set(per_notification) == set(ids)
    assert duplicated <= flagged, "a duplicate is possible here (a send cut off by the outage), but flagged"
