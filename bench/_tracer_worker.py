"""The worker module for `python -m dramatiq bench._tracer_worker`: app.worker_entry with the tracer.

Used only by bench/sql_trace.py. Each forked worker process imports this module, so each installs
the tracer and wraps every actor so that its statements are attributed to it.
"""

from bench._tracer import install, wrap_actors

install("worker")

from app.worker_entry import broker  # noqa: E402

wrap_actors(broker)
