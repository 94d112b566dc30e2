"""The hot-path reads (app/notify/lookups.py) never cross tenants: a job loads only the rows of the
tenant its outbox row names, and a callback finds only its signer's attempts."""

from __future__ import annotations

import uuid
from typing import Any

from app.notify import lookups, pipeline
from app.notify.models import Attempt, Notification
from app.outbox.models import OutboxItem
from tenants.accounts.models import Tenant
from tenants.contacts.models import Contact


async def _tenant(session: Any) -> uuid.UUID:
    tenant = Tenant(name="t", slug=f"t-{uuid.uuid4().hex[:8]}")
    session.add(tenant)
    await session.flush()
    return tenant.id


async def _attempt(session: Any, tenant_id: uuid.UUID, sid: str) -> tuple[Notification, Attempt]:
    contact = Contact(tenant_id=tenant_id)
    session.add(contact)
    await session.flush()
    n = Notification(
        tenant_id=tenant_id,
        contact_id=contact.id,
        recipient={"email": "ava@example.com"},
        variables={},
        channels=["whatsapp"],
        metadata_={},
    )
    session.add(n)
    await session.flush()
    attempt = Attempt(tenant_id=tenant_id, notification_id=n.id, channel="whatsapp", kind="session", provider="twilio")
    attempt.provider_message_id = sid
    session.add(attempt)
    await session.flush()
    return n, attempt


def _outbox(tenant_id: uuid.UUID, kind: str, ref: uuid.UUID) -> OutboxItem:
    return OutboxItem(tenant_id=tenant_id, kind=kind, ref_id=ref)


async def test_a_job_loads_only_the_rows_of_its_outbox_rows_tenant(session: Any) -> None:
    mine, theirs = await _tenant(session), await _tenant(session)
    n, attempt = await _attempt(session, mine, "SM" + "1" * 32)
    # The job's outbox row says another tenant asked for this work: nothing is loaded, nothing is sent.
    session.add(_outbox(theirs, pipeline.SEND_WHATSAPP, attempt.id))
    session.add(_outbox(theirs, "notification.route", n.id))
    await session.flush()
    assert await lookups.attempt_job(session, pipeline.SEND_WHATSAPP, attempt.id) is None
    assert await lookups.notification_job(session, "notification.route", n.id) is None
    assert await lookups.dead_attempt(session, [pipeline.SEND_WHATSAPP], attempt.id) is None
    assert await lookups.dead_notification(session, ["notification.route"], n.id) is None
    # The same work recorded for its own tenant is found (email has no outbox row at all: not found).
    session.add(_outbox(mine, pipeline.SEND_EMAIL, attempt.id))
    await session.flush()
    found = await lookups.attempt_job(session, pipeline.SEND_EMAIL, attempt.id)
    assert found is not None and found[0].id == n.id and found[1].id == attempt.id and found[2] == "active"
    assert await lookups.attempt_job(session, "attempt.check_whatsapp", attempt.id) is None


async def test_a_job_never_pairs_an_attempt_with_another_tenants_notification(session: Any) -> None:
    mine, theirs = await _tenant(session), await _tenant(session)
    their_n, _ = await _attempt(session, theirs, "SM" + "2" * 32)
    _, attempt = await _attempt(session, mine, "SM" + "3" * 32)
    attempt.notification_id = their_n.id  # a corrupt row: the attempt names another tenant's notification
    session.add(_outbox(mine, pipeline.SEND_WHATSAPP, attempt.id))
    await session.flush()
    assert await lookups.attempt_job(session, pipeline.SEND_WHATSAPP, attempt.id) is None
    assert await lookups.notification_of(session, attempt) is None


async def test_a_callback_finds_only_its_signers_attempts(session: Any) -> None:
    mine, theirs = await _tenant(session), await _tenant(session)
    sid = "SM" + "4" * 32
    _, attempt = await _attempt(session, mine, sid)
    assert await lookups.find_attempt(session, theirs, "twilio", attempt_ref=attempt.id, provider_id=sid) is None
    found = await lookups.find_attempt(session, mine, "twilio", attempt_ref=str(attempt.id), provider_id=sid)
    assert found is not None and found[0].id == attempt.id
    assert (await lookups.find_attempt(session, mine, "twilio", provider_id=sid)) == found
    # Twilio: an attempt named by id but linked to another SID is not this message's.
    assert (
        await lookups.find_attempt(
            session, mine, "twilio", attempt_ref=attempt.id, provider_id="SM" + "5" * 32, same_message=True
        )
        is None
    )
    assert await lookups.taken_message_ids(session, theirs, "twilio", [sid]) == set()
    assert await lookups.taken_message_ids(session, mine, "twilio", [sid, "SMx"]) == {sid}


async def test_the_email_of_a_notification_is_the_requests_own_first(session: Any) -> None:
    n, _ = await _attempt(session, await _tenant(session), "SM" + "6" * 32)
    assert await lookups.email_of(session, n) == "ava@example.com"
    n.recipient = {}
    assert await lookups.email_of(session, n) is None  # no identifiers recorded for the contact
