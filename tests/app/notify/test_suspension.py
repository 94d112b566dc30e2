"""A suspended tenant sends nothing to any provider: its jobs wait, without using up tries, and
resume on reactivation. Its inbound events are still processed and a STOP is still honoured, but
the opt-out confirmation held back is never sent, not even after reactivation."""

from __future__ import annotations

import asyncio
import time
import uuid

from sqlalchemy import select

from app.core.db import session_factory
from app.notify import sending
from app.notify.models import Attempt, Notification
from app.outbox import service as outbox
from app.outbox.models import OutboxItem
from app.webhooks import service as webhooks
from app.webhooks.models import RawEvent
from tenants.contacts.models import ConsentEntry, Suppression
from tests.factories import OPERATOR
from tests.support.gateway import notify, read, settle, wired_tenant

USER = "+14155550123"


async def until(what: str, probe, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        async with session_factory()() as s:
            found = await probe(s)
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def set_status(client, tenant_id: str, status: str) -> None:
    r = await client.patch(f"/operator/v1/tenants/{tenant_id}", json={"status": status}, headers=OPERATOR)
    assert r.status_code == 200 and r.json()["status"] == status


async def resume_held() -> None:
    """What every worker's maintenance pass does: held work of active tenants is sent again."""
    async with session_factory()() as s:
        await outbox.sweep(s)


async def test_a_queued_retry_waits_while_suspended_and_is_sent_on_reactivation(
    client, emulator, gateway, worker, monkeypatch
):
    monkeypatch.setattr(sending, "BACKOFF_SECONDS", (3, 3, 3, 3, 3))
    t = await wired_tenant(client, emulator, gateway)
    to = {"phone": "+15005550004"}  # REST 500 once, then success
    nid = await notify(client, t, to=to, channels=["whatsapp"])
    attempt = await until(
        "the retry to be queued",
        lambda s: s.scalar(
            select(Attempt).where(Attempt.notification_id == uuid.UUID(nid), Attempt.status == "retry_wait")
        ),
    )
    await set_status(client, t.id, "suspended")

    held = await until(
        "the retry to be held",
        lambda s: s.scalar(select(OutboxItem).where(OutboxItem.ref_id == attempt.id, OutboxItem.state == "held")),
    )
    assert held.tries == 0  # waiting is not a try
    await resume_held()  # the sweeper leaves a suspended tenant's work alone
    await settle(emulator)
    assert emulator.messages(account_sid=t.account["account_sid"]) == []
    async with session_factory()() as s:
        assert (await s.get(Attempt, attempt.id)).status == "retry_wait"
        assert (await s.scalar(select(OutboxItem.state).where(OutboxItem.ref_id == attempt.id))) == "held"

    await set_status(client, t.id, "active")
    await resume_held()
    await settle(emulator)
    (message,) = emulator.messages(account_sid=t.account["account_sid"])
    n = await read(client, t, nid)
    assert n["status"] in ("delivered", "read") and n["attempts"][0]["provider_message_id"] == message["sid"]
    assert any(d["step"] == "tenant" and d["result"] == "suspended" for d in n["decisions"])


async def test_new_notifications_of_a_suspended_tenant_are_held_too(client, emulator, gateway, worker):
    t = await wired_tenant(client, emulator, gateway)
    worker.pause()
    try:
        nid = await notify(client, t)  # accepted just before the suspension
        await set_status(client, t.id, "suspended")
    finally:
        worker.resume()
    await until(
        "the route job to be held",
        lambda s: s.scalar(select(OutboxItem).where(OutboxItem.ref_id == uuid.UUID(nid), OutboxItem.state == "held")),
    )
    await settle(emulator)
    assert emulator.messages(account_sid=t.account["account_sid"]) == []
    assert emulator.sendgrid_messages(api_key=t.sendgrid["api_key"]) == []
    await set_status(client, t.id, "active")
    await resume_held()
    await settle(emulator)
    assert len(emulator.messages(account_sid=t.account["account_sid"])) == 1
    assert (await read(client, t, nid))["status"] == "read"


async def test_stop_while_suspended_is_honoured_and_no_confirmation_goes_out(client, emulator, gateway, worker):
    t = await wired_tenant(client, emulator, gateway)
    await set_status(client, t.id, "suspended")
    emulator.inbound(t.account["account_sid"], from_=USER, body="STOP")
    await settle(emulator)
    async with session_factory()() as s:
        assert (await s.scalar(select(Suppression.reason).where(Suppression.channel == "whatsapp"))) == "opted_out"
        assert (await s.scalar(select(ConsentEntry.status))) == "withdrawn"
        assert (await s.execute(select(Notification))).scalars().all() == []  # no confirmation created
        assert all(r.processed_at for r in (await s.execute(select(RawEvent))).scalars())
    await set_status(client, t.id, "active")
    await resume_held()
    await settle(emulator)
    assert emulator.messages(account_sid=t.account["account_sid"], to=f"whatsapp:{USER}") == []
    sup = (await client.get("/v1/suppressions", params={"phone": USER}, headers=t.admin)).json()["items"]
    assert len(sup) == 1 and sup[0]["source"] == "inbound_keyword"


async def test_a_confirmation_created_before_the_suspension_is_finished_not_sent_later(
    client, emulator, gateway, worker
):
    t = await wired_tenant(client, emulator, gateway)
    worker.pause()
    try:
        emulator.inbound(t.account["account_sid"], from_=USER, body="STOP")
        async with session_factory()() as s:  # the STOP is processed while the tenant is active...
            event = await webhooks.claim(s, (await s.scalar(select(RawEvent.id))))
            await webhooks.process(s, event)
            await s.commit()
        await set_status(client, t.id, "suspended")  # ...and the tenant is suspended before its confirmation goes
    finally:
        worker.resume()
    await settle(emulator)
    await set_status(client, t.id, "active")
    await resume_held()
    await settle(emulator)
    assert emulator.messages(account_sid=t.account["account_sid"], to=f"whatsapp:{USER}") == []
    async with session_factory()() as s:
        (confirmation,) = (await s.execute(select(Notification))).scalars().all()
        assert confirmation.purpose == "opt_out_confirmation" and confirmation.status == "suppressed"
        assert (await s.scalar(select(OutboxItem.state).where(OutboxItem.ref_id == confirmation.id))) == "done"
    r = await client.get(f"/v1/notifications/{confirmation.id}", headers=t.admin)
    assert any(d["step"] == "tenant" and "not sent" in d["detail"] for d in r.json()["decisions"])
