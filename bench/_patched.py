"""What-if runs: the API (or worker) with proposed performance fixes applied as monkeypatches.

Never imported by the app, and the repository's code is not changed: bench/webhook_ingest.py and
bench/notify_accept.py (`--what-if`) start a third server from here, on the same database, so the
"after" of each proposed fix is measured in the same run as the "before" and the baseline.

    python bench/_patched.py serve PORT        # `notifygw serve`, with $BENCH_PATCHES applied
    python bench/_patched.py emulator PORT     # `notifygw emulator`, with $BENCH_PATCHES applied
    python -m dramatiq bench._patched_worker   # `notifygw worker`, with $BENCH_PATCHES applied

$BENCH_PATCHES is a comma-separated list of the names below (or `all`). Each patch is the smallest
code that behaves like a fix proposed in docs/performance.md, written against today's code. The
fixes that were measured this way and then made (outbox upsert, ON CONFLICT ingest, caches, EVALSHA,
pacing burst, route lookups, batched decisions, the emulator's TLS context) are in the code now and
their patches are gone; docs/performance.md keeps their before-and-after figures.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PATCHES: dict[str, Callable[[], None]] = {}


def patch(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(fn: Callable[[], None]) -> Callable[[], None]:
        PATCHES[name] = fn
        return fn

    return register


def replace_everywhere(original: Any, new: Any) -> int:
    """Rebind every module-level name bound to `original` (callers did `from x import f`)."""
    n = 0
    for module in list(sys.modules.values()):
        d = getattr(module, "__dict__", None)
        if not d or not (getattr(module, "__name__", "").startswith(("app", "tenants", "channels"))):
            continue
        for key, value in list(d.items()):
            if value is original:
                d[key] = new
                n += 1
    return n


@patch("no-owner-query")
def _no_owner_query() -> None:
    """app/webhooks/controllers.py _owned_elsewhere: a SELECT on attempts for every status callback. The
    worker's _find_attempt already looks attempts up within the callback's tenant only, so a SID or
    attempt id of another tenant can only ever become an orphan event there: the API-side query can go."""
    from app.webhooks import controllers

    async def _owned_elsewhere(*args: Any, **kwargs: Any) -> bool:
        return False

    controllers._owned_elsewhere = _owned_elsewhere


def serve_emulator(port: int) -> None:
    """`notifygw emulator` (channels.emulator on uvicorn, its CLI's settings), with $BENCH_PATCHES applied."""
    import uvicorn

    from channels.emulator import create_emulator_app

    apply(os.environ.get("BENCH_PATCHES", ""))
    uvicorn.run(create_emulator_app(), host="127.0.0.1", port=port, access_log=False, log_config=None)


def apply(names: str) -> list[str]:
    wanted = list(PATCHES) if names.strip() == "all" else [n.strip() for n in names.split(",") if n.strip()]
    for name in wanted:
        if name not in PATCHES:
            raise SystemExit(f"unknown patch {name!r}; known: {', '.join(PATCHES)}")
    for name in wanted:
        PATCHES[name]()
    return wanted


def serve(port: int) -> None:
    import uvicorn

    from app.asgi import create_app

    app = create_app()
    import_everything()
    wanted = apply(os.environ.get("BENCH_PATCHES", ""))
    sys.stderr.write(f"bench/_patched.py: patches applied: {', '.join(wanted) or 'none'}\n")
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        proxy_headers=False,
    )


def import_everything() -> None:
    """Import every module a patch rebinds names in, so replace_everywhere reaches all the callers."""
    import importlib

    for name in (
        "app.notify.service",
        "app.notify.pipeline",
        "app.notify.sending",
        "app.notify.controllers",
        "app.notify.tasks",
        "app.webhooks.service",
        "app.webhooks.controllers",
        "app.webhooks.ingest",
        "app.webhooks.tasks",
        "app.endpoints.events",
        "tenants.templates.service",
        "tenants.contacts.service",
        "tenants.credentials.service",
    ):
        importlib.import_module(name)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]))
    elif sys.argv[1:2] == ["emulator"]:
        serve_emulator(int(sys.argv[2]))
