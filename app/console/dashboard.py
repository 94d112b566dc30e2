"""Console: the dashboard. Notifications by outcome and channel, email fallbacks by reason, time to
delivery (p50 and p95 by channel) and dead letters by kind, over the last 24 hours or 7 days, drawn as
SVG on the server (no script, no chart library, no CDN).

The figures are a few grouped queries over the tenant's own rows (owned_by), in the signed-in key's
environment (dead letters: the tenant's, whatever the environment); the time buckets are a CASE over
their boundaries, so the same SQL runs on PostgreSQL and SQLite. Time to delivery is from acceptance
to the first provider event that says delivered (or read), over at most SAMPLE notifications.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from litestar import Controller, Request, Response, get

from app.console.common import HANDLERS, signed_in
from app.core.db import utcnow
from app.core.deps import DbSession
from app.core.repository import owned_by
from app.notify.models import Attempt, Decision, Notification, ProviderEvent
from app.outbox.models import OutboxItem

SAMPLE = 5000
RANGES = {"24h": (timedelta(hours=1), 24), "7d": (timedelta(days=1), 7)}
# Outcomes as the charts group statuses; colours are SVG attributes (the CSP allows no inline style).
OUTCOMES = {
    "delivered": ("delivered", "read"),
    "sent": ("sent",),
    "in progress": ("accepted", "queued", "sending"),
    "failed": ("failed", "suppressed"),
}
COLOURS = {
    "delivered": "#2f855a",
    "sent": "#3182ce",
    "in progress": "#a0aec0",
    "failed": "#c53030",
    "p50": "#3182ce",
    "p95": "#2c5282",
    "dead": "#c53030",
}
OUTCOME_OF = {status: outcome for outcome, statuses in OUTCOMES.items() for status in statuses}
WIDTH, HEIGHT, LEFT, BOTTOM = 720, 220, 40, 30


@dataclass
class Bar:
    x: float
    y: float
    w: float
    h: float
    fill: str
    title: str


def _buckets(now: datetime, step: timedelta, n: int) -> list[datetime]:
    """The n+1 boundaries of n buckets ending at the current one's end."""
    if step >= timedelta(days=1):
        end = now.replace(hour=0, minute=0, second=0, microsecond=0) + step
    else:
        end = now.replace(minute=0, second=0, microsecond=0) + step
    return [end - step * (n - i) for i in range(n + 1)]


async def counts(db: Any, tenant_id: Any, environment: str, bounds: list[datetime]) -> dict[str, Any]:
    since = bounds[0]
    bucket = sa.case(*((Notification.created_at < b, i) for i, b in enumerate(bounds[1:])), else_=len(bounds) - 2)
    scope = (
        owned_by(Notification, tenant_id),
        Notification.environment == environment,
        Notification.created_at >= since,
    )
    series: dict[int, Counter[str]] = {i: Counter() for i in range(len(bounds) - 1)}
    for i, status, n in (
        await db.execute(
            sa.select(bucket, Notification.status, sa.func.count()).where(*scope).group_by(bucket, Notification.status)
        )
    ).all():
        series[int(i)][OUTCOME_OF.get(status, "in progress")] += int(n)
    by_channel: dict[str, Counter[str]] = {}
    for channel, status, n in (
        await db.execute(
            sa.select(Notification.channel, Notification.status, sa.func.count())
            .where(*scope)
            .group_by(Notification.channel, Notification.status)
        )
    ).all():
        by_channel.setdefault(channel or "none yet", Counter())[OUTCOME_OF.get(status, "in progress")] += int(n)
    fallbacks = Counter[str]()
    for reason, n in (
        await db.execute(
            sa.select(Decision.detail, sa.func.count())
            .join(Notification, Notification.id == Decision.notification_id)
            .where(
                owned_by(Decision, tenant_id),
                *scope,
                Decision.step == "fallback",
                Decision.result == "email",
            )
            .group_by(Decision.detail)
        )
    ).all():
        fallbacks[reason or "unknown"] += int(n)
    first_delivered = (
        sa.select(Attempt.channel, Notification.created_at, sa.func.min(ProviderEvent.occurred_at))
        .join(Attempt, Attempt.id == ProviderEvent.attempt_id)
        .join(Notification, Notification.id == Attempt.notification_id)
        .where(
            owned_by(ProviderEvent, tenant_id),
            owned_by(Attempt, tenant_id),
            *scope,
            ProviderEvent.status.in_(("delivered", "read")),
        )
        .group_by(Notification.id, Attempt.channel, Notification.created_at)
        .limit(SAMPLE)
    )
    waits: dict[str, list[float]] = {}
    for channel, created, delivered in (await db.execute(first_delivered)).all():
        waits.setdefault(channel, []).append(max(0.0, (_aware(delivered) - _aware(created)).total_seconds()))
    dead = Counter[str]()
    for kind, n in (
        await db.execute(
            sa.select(OutboxItem.kind, sa.func.count())
            .where(owned_by(OutboxItem, tenant_id), OutboxItem.state == "dead", OutboxItem.dead_at >= since)
            .group_by(OutboxItem.kind)
        )
    ).all():
        dead[kind] += int(n)
    return {
        "series": series,
        "by_channel": by_channel,
        "fallbacks": fallbacks,
        "delivery": {c: percentiles(v) for c, v in sorted(waits.items())},
        "dead": dead,
    }


def _aware(when: datetime) -> datetime:
    """SQLite hands back naive datetimes; they are UTC."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def percentiles(values: list[float]) -> dict[str, float]:
    """p50 and p95 by nearest rank, and how many."""
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)]

    return {"p50": rank(0.5), "p95": rank(0.95), "n": len(ordered)}


def columns(series: dict[int, Counter[str]], bounds: list[datetime], label: str) -> dict[str, Any]:
    """A stacked column per bucket, by outcome."""
    top = max([sum(c.values()) for c in series.values()] + [1])
    slot = (WIDTH - LEFT) / len(series)
    bars, labels = [], []
    for i, c in series.items():
        y = float(HEIGHT - BOTTOM)
        for outcome in OUTCOMES:
            if c[outcome]:
                h = (HEIGHT - BOTTOM - 10) * c[outcome] / top
                y -= h
                when = bounds[i].strftime(label)
                bars.append(
                    Bar(LEFT + i * slot + 2, y, slot - 4, h, COLOURS[outcome], f"{when}: {c[outcome]} {outcome}")
                )
        if i % max(1, len(series) // 8) == 0:
            labels.append((LEFT + i * slot + slot / 2, bounds[i].strftime(label)))
    return {
        "bars": bars,
        "labels": labels,
        "top": top,
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "bottom": BOTTOM,
    }


def hbars(rows: Mapping[str, Mapping[str, float]], *, by_size: bool = True, unit: str = "") -> dict[str, Any]:
    """Horizontal bars, one per key (biggest first, or in key order), stacked by its parts (outcomes,
    or one "fallback", "dead", "p50", "p95"), each labelled with its total."""
    items = sorted(rows.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]) if by_size else (0, kv[0]))
    top = max([sum(v.values()) for _, v in items] + [1])
    left, row_h, width = 170, 26, 520
    bars, labels = [], []
    for i, (key, value) in enumerate(items):
        x = float(left)
        for part in [*OUTCOMES, "fallback", "p50", "p95", "dead"]:
            if value.get(part):
                w = (width - left - 60) * value[part] / top
                title = f"{key}: {value[part]:g}{unit} {part}"
                bars.append(Bar(x, i * row_h + 4, w, row_h - 8, COLOURS.get(part, "#805ad5"), title))
                x += w
        labels.append((i * row_h + row_h / 2 + 4, key, x + 6, f"{sum(value.values()):g}{unit}"))
    return {"bars": bars, "labels": labels, "width": width, "height": max(row_h * len(items), row_h), "left": left}


class DashboardPages(Controller):
    path = "/console"
    include_in_schema = False
    exception_handlers = HANDLERS

    @get("/dashboard")
    async def dashboard(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request, db_session)
        asked = request.query_params.get("range") or ""
        span = asked if asked in RANGES else "24h"
        step, n = RANGES[span]
        bounds = _buckets(utcnow(), step, n)
        found = await counts(db_session, ctx.tenant, ctx.principal.environment, bounds)
        total = Counter[str]()
        for c in found["series"].values():
            total.update(c)
        return ctx.view(
            "dashboard.html",
            span=span,
            ranges=list(RANGES),
            total=total,
            outcomes=list(OUTCOMES),
            colours=COLOURS,
            over_time=columns(found["series"], bounds, "%H:%M" if span == "24h" else "%a %d"),
            by_channel=hbars(found["by_channel"]),
            fallbacks=hbars({reason: {"fallback": n} for reason, n in found["fallbacks"].items()}),
            has_fallbacks=bool(found["fallbacks"]),
            delivery=found["delivery"],
            dead=hbars({kind: {"dead": n} for kind, n in found["dead"].items()}),
            has_dead=bool(found["dead"]),
            delivery_bars=hbars(
                {f"{c} p{p}": {f"p{p}": round(d[f"p{p}"], 1)} for c, d in found["delivery"].items() for p in (50, 95)},
                by_size=False,
                unit=" s",
            ),
        )


ROUTES = [DashboardPages]
