"""The targets `make bench` judges against (issue 13), in one place.

Every verdict bench/run_all.py prints reads its bound from TARGETS. A ratio is against the minimal
baseline (bench/baselines/) measured in the same run, so a slower or busier machine moves both sides.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    key: str
    what: str
    bound: float
    op: str  # ">=" or "<="
    unit: str = ""

    def ok(self, value: float | None) -> bool:
        if value is None or value != value:  # not measured, or NaN
            return False
        return value >= self.bound if self.op == ">=" else value <= self.bound

    def text(self) -> str:
        return f"{self.op} {self.bound:g}{self.unit}"


TARGETS: dict[str, Target] = {
    t.key: t
    for t in (
        Target("webhook_ratio", "webhook ingest throughput, 32 connections, vs baseline", 0.8, ">=", "x"),
        Target("webhook_p99_ratio", "webhook ingest p99 vs baseline p99", 1.5, "<=", "x"),
        Target("burst_p95_ms", "500/s burst of signed callbacks, p95 from scheduled time", 50.0, "<=", " ms"),
        Target("burst_errors", "500/s burst: errors (non-2xx, timeouts, connection errors)", 0, "<="),
        Target("notify_ratio", "notify accept throughput, 32 connections, vs baseline", 0.8, ">=", "x"),
        Target("notify_p99_ratio", "notify accept p99 vs baseline p99", 1.5, "<=", "x"),
        Target("e2e_cpu_ratio", "gateway CPU per notification vs webhook baseline CPU per request", 10.0, "<=", "x"),
        Target("e2e_per_s", "end-to-end notifications/s sustained", 80.0, ">=", "/s"),
        Target("e2e_5xx", "answers of 5xx during the end-to-end run", 0, "<="),
        Target("e2e_accept_p99_ms", "accept p99 under the end-to-end load", 1000.0, "<=", " ms"),
        # One sender paced at the default: the steady rate (10 % -> 90 % of notifications terminal) must
        # show 80/s per sender. Pacing at exactly 80/s caps the rate at 80, so 95 % of it is the bound.
        Target("default_pacing_per_s", "one sender at the default pacing, steady notifications/s", 76.0, ">=", "/s"),
        Target("emulator_cpu_ms", "emulator CPU per notification, callbacks included", 3.0, "<=", " ms"),
        Target("worker_rss_mb", "worker RSS summed over its processes", 250.0, "<=", " MB"),
        Target("api_rss_mb", "API RSS (issue 7)", 150.0, "<=", " MB"),
        Target("db_round_trips", "database round trips per notification, at the driver", 12.0, "<="),
    )
}

# The burst's shape and the generator check: the generator must hold the rate against the baseline.
BURST_RATE = 500.0
BURST_SECONDS = 10.0
GENERATOR_MIN_RATE_SHARE = 0.98  # achieved send rate / asked rate, against the baseline
