"""The worker module for `python -m dramatiq bench._patched_worker`: app.worker_entry with the what-if
patches of bench/_patched.py ($BENCH_PATCHES) applied in each forked worker process."""

import os

from app.worker_entry import broker  # noqa: F401  (declares every actor)
from bench._patched import apply, import_everything

import_everything()
apply(os.environ.get("BENCH_PATCHES", ""))
