"""A worker process loads no web framework: what it imports at start-up is resident in every worker
process (the issue's worker RSS budget is summed over them). The API's auth and Litestar stay in the API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
API_ONLY = ("litestar", "uvicorn")


def test_the_worker_entry_imports_no_web_framework() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFYGW_")} | {
        "NOTIFYGW_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/unused",  # never connected
        "NOTIFYGW_REDIS_URL": "redis://127.0.0.1:6379/15",
        "NOTIFYGW_OPERATOR_TOKEN": "o" * 40,
        "NOTIFYGW_ENCRYPTION_KEYS": "k1:" + "A" * 43,
        "NOTIFYGW_PEPPER": "p" * 40,
        "NOTIFYGW_PUBLIC_BASE_URL": "http://127.0.0.1:8000",
    }
    probe = f"import sys, app.worker_entry; print(sorted(m for m in {API_ONLY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]", f"the worker imports {done.stdout.strip()}"
