"""Row 11: tenant A's email template spins (nested loops) while tenant B sends probe emails.

Pass: every one of B's probes is delivered, and every one of A's notifications ends `failed` with the
render-budget reason (render_budget). B's delay, accept (created_at) to send (sending_started_at), is
measured and printed: a hostile template version holds the worker's renderer for at most
RENDER_TIMEOUT_SECONDS once (later renders of it are refused from memory), so the bound on what B
waits is about that, plus a respawn of the renderer. Tests never assert on time: only behaviour is asserted.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select

from app.core.db import session_factory
from app.notify.models import Attempt, Notification
from tenants.templates.sandbox import RENDER_TIMEOUT_SECONDS
from tests.faults.support import Stack, battery_tenant, percentile, post_many, report, scale, wait_terminal

pytestmark = pytest.mark.faults

SPIN = "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}"


async def test_a_hostile_template_does_not_hold_up_other_tenants(client, emulator, tmp_path):
    a_count, b_count = scale(200, 20), scale(200, 20)
    started = time.monotonic()
    stack = Stack(tmp_path, "f11")
    try:
        a = await battery_tenant(client, emulator, stack.api_url)
        b = await battery_tenant(client, emulator, stack.api_url)
        r = await client.post(
            "/v1/templates",
            headers=a.admin,
            json={
                "key": "hostile",
                "default_locale": "en",
                "locales": {"en": {"email": {"subject": "Hi {{name}}", "text": SPIN}}},
            },
        )
        assert r.status_code == 201, r.text
        stack.start_api()
        stack.start_worker(threads=8)

        def body(i: int, template: str) -> dict:
            return {
                "to": {"email": f"user{i}@example.com"},
                "channels": ["email"],
                "template": template,
                "variables": {"name": "Ava", "order": str(10000 + i)},
            }

        # One probe first, so the figures measure the renderer and not the worker's boot; then B alone,
        # for the baseline on this machine; then B beside A.
        await wait_terminal(await post_many(stack.api_url, b.sender, [body(999, "order_shipped")]), timeout=120)
        alone = await post_many(
            stack.api_url, b.sender, [body(2000 + i, "order_shipped") for i in range(b_count)], concurrency=2
        )
        await wait_terminal(alone, timeout=scale(600, 180))
        a_ids, b_ids = await asyncio.gather(
            post_many(stack.api_url, a.sender, [body(i, "hostile") for i in range(a_count)], concurrency=4),
            post_many(stack.api_url, b.sender, [body(i, "order_shipped") for i in range(b_count)], concurrency=2),
        )
        await wait_terminal(a_ids + b_ids, timeout=scale(600, 180))
    finally:
        stack.close()

    async with session_factory()() as s:
        rows = (
            await s.execute(
                select(
                    Notification.id,
                    Notification.status,
                    Notification.created_at,
                    Attempt.sending_started_at,
                    Attempt.error_class,
                )
                .join(Attempt, Attempt.notification_id == Notification.id)
                .where(Notification.id.in_(a_ids + b_ids + alone))
            )
        ).all()
    by_id = {str(r.id): r for r in rows}

    def delays(ids: list[str]) -> list[float]:
        return [
            (by_id[i].sending_started_at - by_id[i].created_at).total_seconds()
            for i in ids
            if by_id[i].sending_started_at is not None
        ]

    b_delays, baseline = delays(b_ids), delays(alone)
    report(
        11,
        "tenant A's hostile email template, tenant B's probe emails",
        a_notifications=a_count,
        b_probes=b_count,
        render_timeout_s=RENDER_TIMEOUT_SECONDS,
        b_alone_p50_s=round(percentile(baseline, 50), 3),
        b_alone_p99_s=round(percentile(baseline, 99), 3),
        b_p50_s=round(percentile(b_delays, 50), 3),
        b_p99_s=round(percentile(b_delays, 99), 3),
        b_max_s=round(max(b_delays), 3),
        wall_seconds=round(time.monotonic() - started, 1),
    )
    assert {by_id[i].status for i in b_ids} == {"delivered"}, "every probe of B is delivered"
    assert len(b_delays) == b_count
    assert {(by_id[i].status, by_id[i].error_class) for i in a_ids} == {("failed", "render_budget")}
