"""Ambiguous WhatsApp sends end to end: Twilio answers after our client gave up, or the connection drops.

Gateway server, Dramatiq worker on Redis, and the emulator's magic numbers (docs/emulator.md):
+15005550005 late 201 then callbacks, +15005550010 late 201 and no callback, +15005550011 the first
create drops the connection and creates nothing, +15005550012 late 201, no callback, and the Messages
list fails. The client timeout is NOTIFYGW_PROVIDER_TIMEOUT_SECONDS=3 (tests/conftest.py).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.core.db import session_factory, utcnow
from app.notify import ambiguity, lookups, maintenance
from app.notify.models import Attempt
from tests.support.gateway import notify, read, settle, wired_tenant

pytestmark = pytest.mark.usefixtures("worker")

EMAIL = "ava@example.com"


@pytest.fixture
def late_answers(emulator, monkeypatch):
    """The emulator answers 2 s after our 3 s client timeout; the first look comes 5 s after the timeout,
    so a callback sent with the late answer has 3 s to land first. Later looks are quick."""
    emulator.configure(slow_response_seconds=5.0)
    monkeypatch.setattr(ambiguity, "CHECK_DELAYS", (5.0, 0.2, 0.2))


def sent_to(emulator, t, phone: str) -> list[dict]:
    return emulator.messages(account_sid=t.account["account_sid"], to=f"whatsapp:{phone}")


def ambiguity_trail(n: dict) -> list[tuple[str, str]]:
    return [(d["result"], d["detail"] or "") for d in n["decisions"] if d["step"] == "ambiguity"]


async def run(client, emulator, gateway, phone: str, *, window: bool = False, **body) -> tuple[object, dict]:
    t = await wired_tenant(client, emulator, gateway)
    if window:  # the person wrote first: a session message (with a body to compare) may go
        emulator.inbound(t.account["account_sid"], from_=phone, body="hi")
        await settle(emulator)
    nid = await notify(client, t, to={"phone": phone, "email": EMAIL}, **body)
    try:
        await settle(emulator, timeout=60)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {await read(client, t, nid)}") from None
    return t, await read(client, t, nid)


@pytest.mark.usefixtures("late_answers")
async def test_late_answer_with_callback_is_sent_once_and_linked(client, emulator, gateway):
    t, n = await run(client, emulator, gateway, "+15005550005")
    (copy,) = sent_to(emulator, t, "+15005550005")
    (attempt,) = n["attempts"]
    assert attempt["provider_message_id"] == copy["sid"] and attempt["tries"] == 1, n
    assert not attempt["possible_duplicate"] and n["channel"] == "whatsapp" and n["status"] in ("delivered", "read")
    trail = ambiguity_trail(n)
    assert [r for r, _ in trail] == ["unknown", "accepted"] and "status callback" in trail[1][1], trail
    assert emulator.sendgrid_messages(api_key=t.sendgrid["api_key"]) == []
    assert dict(copy["request"])["ValidityPeriod"] == "3600"


@pytest.mark.usefixtures("late_answers")
async def test_late_answer_without_callback_is_found_in_the_list(client, emulator, gateway):
    t, n = await run(client, emulator, gateway, "+15005550010", window=True, text="Your code is 4711")
    (copy,) = sent_to(emulator, t, "+15005550010")
    assert copy["callbacks"] == []
    (attempt,) = n["attempts"]
    assert attempt["kind"] == "session" and copy["body"] == "Your code is 4711"
    assert attempt["provider_message_id"] == copy["sid"] and attempt["tries"] == 1 and not attempt["possible_duplicate"]
    trail = ambiguity_trail(n)
    assert [r for r, _ in trail] == ["unknown", "accepted"] and "found in Twilio's list" in trail[1][1], trail
    assert n["channel"] == "whatsapp" and n["status"] in ("delivered", "read"), n  # the status Twilio's list showed
    assert emulator.sendgrid_messages(api_key=t.sendgrid["api_key"]) == []


@pytest.mark.usefixtures("late_answers")
async def test_connection_reset_before_create_is_sent_again_once(client, emulator, gateway):
    t, n = await run(client, emulator, gateway, "+15005550011")
    (copy,) = sent_to(emulator, t, "+15005550011")
    (attempt,) = n["attempts"]
    assert attempt["tries"] == 2 and not attempt["possible_duplicate"], attempt
    assert attempt["provider_message_id"] == copy["sid"] and n["status"] in ("delivered", "read")
    assert [r for r, _ in ambiguity_trail(n)] == ["unknown", "not_found"], n["decisions"]
    assert emulator.sendgrid_messages(api_key=t.sendgrid["api_key"]) == []


async def test_unknowable_outcome_sends_at_most_once_more_flagged(client, emulator, gateway, monkeypatch):
    emulator.configure(slow_response_seconds=4.0)
    monkeypatch.setattr(ambiguity, "CHECK_DELAYS", (0.2, 0.2, 0.2))
    t, n = await run(client, emulator, gateway, "+15005550012")
    copies = sent_to(emulator, t, "+15005550012")
    (attempt,) = n["attempts"]
    assert len(copies) == 2 and attempt["tries"] == 2, (copies, attempt)
    assert attempt["possible_duplicate"] and attempt["status"] == "unknown" and n["status"] == "unknown", n
    results = [r for r, _ in ambiguity_trail(n)]
    assert results == [
        "unknown",
        "check_failed",
        "check_failed",
        "unknown_resent",
        "unknown",
        "check_failed",
        "check_failed",
        "unknown",
    ], results
    assert [a["channel"] for a in n["attempts"]] == ["whatsapp"]
    assert emulator.sendgrid_messages(api_key=t.sendgrid["api_key"]) == []
    async with session_factory()() as s:  # a duplicate of the last look's job (the outbox sweep) does nothing
        found = await lookups.attempt_job(s, ambiguity.CHECK_WHATSAPP, uuid.UUID(attempt["id"]))
        assert found is not None and await ambiguity.check(s, found[0], found[1])
        await s.commit()
    assert ambiguity_trail(await read(client, t, n["id"])) == ambiguity_trail(n)


async def test_worker_lost_mid_send_is_looked_for_before_any_resend(client, emulator, gateway):
    """requeue_stuck_sends: `sending` with no SID past the grace period is the same ambiguity."""
    emulator.configure(slow_response_seconds=0.1)  # answered in time; its callbacks are lost all the same
    t, n = await run(client, emulator, gateway, "+15005550010")  # accepted, and no callback will tell us
    (copy,) = sent_to(emulator, t, "+15005550010")
    async with session_factory()() as s:  # as if the worker died before recording the SID
        attempt = (await s.execute(select(Attempt).where(Attempt.notification_id == n["id"]))).scalar_one()
        attempt.status, attempt.provider_message_id = "sending", None
        attempt.sending_started_at = utcnow() - maintenance.SENDING_GRACE - timedelta(seconds=1)
        await s.commit()
    async with session_factory()() as s:
        assert await maintenance.requeue_stuck_sends(s) == 1
    await settle(emulator)
    n = await read(client, t, n["id"])
    assert len(sent_to(emulator, t, "+15005550010")) == 1, "not sent again"
    (attempt,) = n["attempts"]
    assert attempt["provider_message_id"] == copy["sid"] and not attempt["possible_duplicate"], attempt
    trail = ambiguity_trail(n)[-2:]
    assert [r for r, _ in trail] == ["unknown", "accepted"] and "worker was lost" in trail[0][1], trail
