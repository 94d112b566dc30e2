"""Per-sender pacing reschedules instead of sleeping; the reconciler brings stale attempts up to date."""

from __future__ import annotations

import uuid
from datetime import timedelta

from app.core.db import session_factory, utcnow
from app.metrics.registry import RATE_LIMIT_WAITS
from app.notify import maintenance
from app.notify.models import Attempt
from tests.support.gateway import notify, read, settle, wired_tenant


async def test_sender_pacing_reschedules_and_everything_still_goes(client, emulator, gateway, worker):
    t = await wired_tenant(client, emulator, gateway, rate=5.0)  # 5 messages/s for this sender
    waits_before = RATE_LIMIT_WAITS.labels("whatsapp_sender")._value.get()
    ids = [await notify(client, t, to={"phone": f"+1415557{i:04d}"}) for i in range(12)]
    await settle(emulator, timeout=60)
    assert RATE_LIMIT_WAITS.labels("whatsapp_sender")._value.get() > waits_before, "a burst of 12 must wait for tokens"
    statuses = [(await read(client, t, nid))["status"] for nid in ids]
    assert set(statuses) == {"read"}, statuses
    assert len(emulator.messages(account_sid=t.account["account_sid"])) == 12  # each sent once


async def test_reconciler_fetches_stale_attempts_from_twilio(client, emulator, gateway, worker, monkeypatch):
    t = await wired_tenant(client, emulator, gateway)
    nid = await notify(client, t)
    await settle(emulator)
    attempt_id = uuid.UUID((await read(client, t, nid))["attempts"][0]["id"])
    async with session_factory()() as s:  # as if the delivered/read callbacks had been lost
        row = await s.get(Attempt, attempt_id)
        row.status, row.updated_at = "sent", utcnow() - timedelta(minutes=11)
        await s.commit()
    async with session_factory()() as s:
        assert await maintenance.reconcile(s) == 1
    n = await read(client, t, nid)
    assert n["attempts"][0]["status"] == "read" and n["status"] == "read"
    async with session_factory()() as s:  # fresh attempts are left alone
        assert await maintenance.reconcile(s) == 0
