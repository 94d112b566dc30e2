"""A real `dramatiq app.worker_entry` worker, with the repair thresholds scaled down for the battery.

`python -m dramatiq tests.faults.worker_boot` boots exactly what app.worker_entry boots; only the
timing constants below change (production: maintenance every 10 s, sweep after 30 s, resend a stuck
`sending` after 2 min, reconcile after 10 min, retry backoff of minutes). The logic under test is the same at these scales.

  NOTIFYGW_FAULTS_MAINTENANCE_EVERY   seconds between maintenance passes
  NOTIFYGW_FAULTS_SWEEP_AFTER         outbox SWEEP_AFTER, seconds
  NOTIFYGW_FAULTS_SENDING_GRACE       maintenance SENDING_GRACE, seconds
  NOTIFYGW_FAULTS_RECONCILE_AFTER     maintenance RECONCILE_AFTER, seconds (a status callback lost
                                      while the API answered 503 is repaired by the reconciler)
  NOTIFYGW_FAULTS_BACKOFF             sending BACKOFF_SECONDS, one value used for every try
  NOTIFYGW_FAULTS_CHECK_DELAY         ambiguity CHECK_DELAYS, one value used for every look at Twilio
"""

from __future__ import annotations

import os
from datetime import timedelta

from app.notify import ambiguity, maintenance, sending
from app.outbox import service as outbox
from app.worker import Maintenance, boot


def _seconds(name: str) -> float | None:
    value = os.environ.get(name)
    return float(value) if value else None


if (v := _seconds("NOTIFYGW_FAULTS_SWEEP_AFTER")) is not None:
    outbox.SWEEP_AFTER = timedelta(seconds=v)
if (v := _seconds("NOTIFYGW_FAULTS_SENDING_GRACE")) is not None:
    maintenance.SENDING_GRACE = timedelta(seconds=v)
if (v := _seconds("NOTIFYGW_FAULTS_RECONCILE_AFTER")) is not None:
    maintenance.RECONCILE_AFTER = timedelta(seconds=v)
if (v := _seconds("NOTIFYGW_FAULTS_BACKOFF")) is not None:
    sending.BACKOFF_SECONDS = (v,) * 5
if (v := _seconds("NOTIFYGW_FAULTS_CHECK_DELAY")) is not None:
    ambiguity.CHECK_DELAYS = (v,) * len(ambiguity.CHECK_DELAYS)

broker = boot()
if (v := _seconds("NOTIFYGW_FAULTS_MAINTENANCE_EVERY")) is not None:
    for middleware in broker.middleware:
        if isinstance(middleware, Maintenance):
            middleware.every = v
