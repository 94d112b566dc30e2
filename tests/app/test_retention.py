"""Retention (issue 14, part 4): bodies redacted in place after each tenant's body retention, metadata
deleted after its metadata retention, tenant by tenant; what opt-outs and audits need survives.

Rows are aged by writing their created_at in the past (no clock is waited on). The settings API's
validation, audit and test-key rules are at the end; one test runs the same job on SQLite.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from app.core import db
from app.core.db import session_factory, utcnow
from app.notify.models import Attempt, Decision, IdempotencyRecord, Notification, ProviderEvent
from app.retention import service as retention
from app.webhooks.models import InboundMessage, RawEvent, WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint
from tenants.accounts.models import Tenant
from tenants.audit.models import AuditEntry
from tenants.contacts.models import ConsentEntry, Contact, ContactIdentifier, ConversationWindow, Suppression
from tests.factories import OPERATOR, bearer, make_key, tenant_with_key

SETTINGS = "/v1/settings/retention"
TEXT = "Your code is 4711, Ava"
VARIABLES = {"name": "Ava", "order": "18473"}
INBOUND = "please call me back on my other number"
FORM = [["MessageSid", "SM1"], ["From", "whatsapp:+14155550100"], ["Body", INBOUND]]
EVENT = {"type": "message.received", "timestamp": "2026-01-01T00:00:00Z", "data": {"body": INBOUND}}


@dataclass
class Seeded:
    """One row of every kind, all dated `days` ago."""

    tenant_id: uuid.UUID
    contact: uuid.UUID
    notification: uuid.UUID
    attempt: uuid.UUID
    decision: uuid.UUID
    event: uuid.UUID
    orphan_event: uuid.UUID
    inbound: uuid.UUID
    raw: uuid.UUID
    delivery: uuid.UUID
    delivery_attempt: uuid.UUID
    window: uuid.UUID
    consent: uuid.UUID
    suppression: uuid.UUID
    audit: uuid.UUID
    endpoint: uuid.UUID


async def seed(
    tenant_id: uuid.UUID,
    days: float,
    *,
    factory: Any = None,
    status: str = "delivered",
    processed: bool = True,
    delivery_status: str = "succeeded",
) -> Seeded:
    when = utcnow() - timedelta(days=days)
    tag = uuid.uuid4().hex[:8]
    async with (factory or session_factory())() as s:
        contact = Contact(tenant_id=tenant_id, profile_name="Ava", created_at=when)
        s.add(contact)
        await s.flush()
        s.add(
            ContactIdentifier(
                tenant_id=tenant_id,
                contact_id=contact.id,
                kind="phone",
                value=f"+1415{tag}",
                value_hash=uuid.uuid4().bytes * 2,
            )
        )
        n = Notification(
            tenant_id=tenant_id,
            contact_id=contact.id,
            recipient={"phone": "+14155550100"},
            template_key="order_shipped",
            variables=VARIABLES,
            text=TEXT,
            media_url="https://media.example/ava.jpg",
            channels=["whatsapp", "email"],
            metadata_={"order_id": "18473"},
            status=status,
            created_at=when,
        )
        s.add(n)
        await s.flush()
        attempt = Attempt(
            tenant_id=tenant_id,
            notification_id=n.id,
            channel="whatsapp",
            kind="session",
            provider="twilio",
            provider_message_id=f"SM{tag}",
            status="delivered",
            created_at=when,
        )
        decision = Decision(
            tenant_id=tenant_id,
            notification_id=n.id,
            step="window",
            result="open",
            detail="inside 24h",
            created_at=when,
        )
        s.add_all([attempt, decision])
        await s.flush()
        event = ProviderEvent(
            tenant_id=tenant_id, attempt_id=attempt.id, provider="twilio", status="delivered", created_at=when
        )
        orphan = ProviderEvent(tenant_id=tenant_id, attempt_id=None, provider="twilio", status="sent", created_at=when)
        inbound = InboundMessage(
            tenant_id=tenant_id,
            contact_id=contact.id,
            message_sid=f"SMin{tag}",
            from_address="whatsapp:+14155550100",
            body=INBOUND,
            media=[{"url": "https://api.twilio.com/media/1", "type": "image/jpeg"}],
            button_payload="yes-please",
            created_at=when,
        )
        raw = RawEvent(
            tenant_id=tenant_id,
            kind="inbound",
            dedupe_key=f"SMin{tag}",
            payload={"form": FORM, "query": []},
            processed_at=when if processed else None,
            created_at=when,
        )
        endpoint = WebhookEndpoint(
            tenant_id=tenant_id, url="https://hooks.example/in", events=["message.received"], secret_enc="sealed"
        )
        s.add_all([event, orphan, inbound, raw, endpoint])
        await s.flush()
        delivery = WebhookDelivery(
            tenant_id=tenant_id,
            endpoint_id=endpoint.id,
            event_type="message.received",
            payload=EVENT,
            status=delivery_status,
            attempt_count=1,
            created_at=when,
        )
        s.add(delivery)
        await s.flush()
        delivery_attempt = WebhookDeliveryAttempt(
            tenant_id=tenant_id, delivery_id=delivery.id, response_status=200, duration_ms=3, created_at=when
        )
        window = ConversationWindow(tenant_id=tenant_id, contact_id=contact.id, sender=f"+1{tag}", last_inbound_at=when)
        consent = ConsentEntry(
            tenant_id=tenant_id,
            contact_id=contact.id,
            channel="whatsapp",
            status="withdrawn",
            source="inbound STOP",
            proof="STOP",
            evidence=f"SMin{tag}",
            captured_at=when,
            created_at=when,
        )
        suppression = Suppression(
            tenant_id=tenant_id,
            contact_id=contact.id,
            channel="whatsapp",
            reason="stop",
            source="inbound",
            evidence=f"SMin{tag}",
            created_at=when,
        )
        audit = AuditEntry(
            tenant_id=tenant_id,
            actor_type="system",
            actor_id="inbound_keyword",
            action="suppression.created",
            target_type="suppression",
            after={"channel": "whatsapp"},
            created_at=when,
        )
        s.add_all([delivery_attempt, window, consent, suppression, audit])
        await s.commit()
        return Seeded(
            tenant_id,
            contact.id,
            n.id,
            attempt.id,
            decision.id,
            event.id,
            orphan.id,
            inbound.id,
            raw.id,
            delivery.id,
            delivery_attempt.id,
            window.id,
            consent.id,
            suppression.id,
            audit.id,
            endpoint.id,
        )


async def load(model: Any, row_id: uuid.UUID, factory: Any = None) -> Any:
    async with (factory or session_factory())() as s:
        return await s.get(model, row_id)


async def assert_untouched(seeded: Seeded, factory: Any = None) -> None:
    n = await load(Notification, seeded.notification, factory)
    assert (n.variables, n.text, n.media_url, n.redacted_at) == (VARIABLES, TEXT, "https://media.example/ava.jpg", None)
    inbound = await load(InboundMessage, seeded.inbound, factory)
    assert (inbound.body, inbound.button_payload, inbound.redacted_at) == (INBOUND, "yes-please", None)
    assert inbound.media
    raw = await load(RawEvent, seeded.raw, factory)
    assert raw.payload == {"form": FORM, "query": []} and raw.redacted_at is None
    delivery = await load(WebhookDelivery, seeded.delivery, factory)
    assert delivery.payload == EVENT and delivery.redacted_at is None


async def assert_redacted(seeded: Seeded, factory: Any = None) -> None:
    n = await load(Notification, seeded.notification, factory)
    assert (n.variables, n.text, n.media_url) == ({}, None, None)
    assert n.redacted_at is not None
    # Metadata and the trail stay until the metadata retention.
    assert n.recipient == {"phone": "+14155550100"} and n.metadata_ == {"order_id": "18473"}
    assert n.status == "delivered" and n.template_key == "order_shipped"
    for model, row_id in (
        (Attempt, seeded.attempt),
        (Decision, seeded.decision),
        (ProviderEvent, seeded.event),
        (ProviderEvent, seeded.orphan_event),
        (WebhookDeliveryAttempt, seeded.delivery_attempt),
        (ConversationWindow, seeded.window),
    ):
        assert await load(model, row_id, factory) is not None, model.__name__
    decision = await load(Decision, seeded.decision, factory)
    assert (decision.step, decision.result, decision.detail) == ("window", "open", "inside 24h")
    inbound = await load(InboundMessage, seeded.inbound, factory)
    assert (inbound.body, inbound.media, inbound.button_payload) == (None, [], None)
    assert inbound.message_sid.startswith("SMin") and inbound.from_address == "whatsapp:+14155550100"
    raw = await load(RawEvent, seeded.raw, factory)
    assert raw.payload == retention.REDACTED_EVENT and raw.redacted_at is not None
    assert INBOUND not in str(raw.payload)
    delivery = await load(WebhookDelivery, seeded.delivery, factory)
    assert delivery.payload == {"type": "message.received", "redacted": True}
    assert delivery.redacted_at is not None and delivery.status == "succeeded"


async def assert_deleted(seeded: Seeded, factory: Any = None) -> None:
    for model, row_id in (
        (Notification, seeded.notification),
        (Attempt, seeded.attempt),
        (Decision, seeded.decision),
        (ProviderEvent, seeded.event),
        (ProviderEvent, seeded.orphan_event),
        (InboundMessage, seeded.inbound),
        (RawEvent, seeded.raw),
        (WebhookDelivery, seeded.delivery),
        (WebhookDeliveryAttempt, seeded.delivery_attempt),
        (ConversationWindow, seeded.window),
    ):
        assert await load(model, row_id, factory) is None, model.__name__


async def assert_opt_out_and_audit_kept(seeded: Seeded, factory: Any = None) -> None:
    """What opt-outs and audits need is never removed by retention."""
    assert (await load(Contact, seeded.contact, factory)) is not None
    consent = await load(ConsentEntry, seeded.consent, factory)
    assert (consent.status, consent.proof, consent.evidence) == ("withdrawn", "STOP", consent.evidence)
    assert consent.evidence.startswith("SMin")
    suppression = await load(Suppression, seeded.suppression, factory)
    assert (suppression.channel, suppression.reason) == ("whatsapp", "stop")
    assert (await load(AuditEntry, seeded.audit, factory)).action == "suppression.created"
    async with (factory or session_factory())() as s:
        hashes = (
            await s.execute(select(func.count()).where(ContactIdentifier.contact_id == seeded.contact))
        ).scalar_one()
    assert hashes == 1
    assert (await load(WebhookEndpoint, seeded.endpoint, factory)) is not None


async def new_tenant(client) -> tuple[uuid.UUID, dict[str, str]]:
    tenant, headers = await tenant_with_key(client)
    return uuid.UUID(tenant["id"]), headers


# --- the job ------------------------------------------------------------------------------------


async def test_bodies_past_the_default_body_retention_are_redacted_and_newer_ones_untouched(client):
    from app.metrics import registry as metrics

    tenant, _ = await new_tenant(client)
    old, recent = await seed(tenant, 31), await seed(tenant, 29)
    counted = metrics.RETENTION_ROWS.labels("redacted.raw_events")._value.get()

    outcome = await retention.run(only=[tenant])

    await assert_redacted(old)
    await assert_untouched(recent)
    await assert_opt_out_and_audit_kept(old)
    assert outcome.counts == {
        "redacted.notifications": 1,
        "redacted.inbound_messages": 1,
        "redacted.raw_events": 1,
        "redacted.webhook_deliveries": 1,
    }
    assert metrics.RETENTION_ROWS.labels("redacted.raw_events")._value.get() == counted + 1
    # A second pass has nothing left to do: redacted rows are not taken again.
    assert (await retention.run(only=[tenant])).counts == {}


async def test_rows_past_the_default_metadata_retention_are_deleted_with_their_trail(client):
    tenant, _ = await new_tenant(client)
    old, kept = await seed(tenant, 401), await seed(tenant, 399)

    outcome = await retention.run(only=[tenant])

    await assert_deleted(old)
    await assert_redacted(kept)
    await assert_opt_out_and_audit_kept(old)
    await assert_opt_out_and_audit_kept(kept)
    assert outcome.counts["deleted.notifications"] == 1
    assert outcome.counts["deleted.provider_events"] == 1  # the orphan; the other went with its attempt
    assert outcome.counts["deleted.raw_events"] == 1 and outcome.counts["deleted.conversation_windows"] == 1


async def test_each_tenant_is_held_to_its_own_settings(client):
    short, short_headers = await new_tenant(client)
    default, _ = await new_tenant(client)
    r = await client.put(SETTINGS, json={"body_days": 7, "metadata_days": 30}, headers=short_headers)
    assert r.status_code == 200, r.text
    short_10, short_35 = await seed(short, 10), await seed(short, 35)
    default_10, default_35 = await seed(default, 10), await seed(default, 35)

    await retention.run()  # every tenant, as the workers do

    await assert_redacted(short_10)
    await assert_deleted(short_35)
    await assert_untouched(default_10)  # tenant A's 7 days never reach tenant B's rows
    await assert_redacted(default_35)  # and B's 30 days apply to B
    for seeded in (short_10, short_35, default_35):
        await assert_opt_out_and_audit_kept(seeded)


async def test_one_tenants_run_leaves_every_other_tenant_alone(client):
    mine, _ = await new_tenant(client)
    other, _ = await new_tenant(client)
    my_old, other_old = await seed(mine, 500), await seed(other, 500)

    await retention.run(only=[mine])

    await assert_deleted(my_old)
    await assert_untouched(other_old)


async def test_expired_idempotency_keys_are_deleted_and_live_ones_kept(client):
    tenant, _ = await new_tenant(client)
    other, _ = await new_tenant(client)
    now = utcnow()
    async with session_factory()() as s:
        rows = {
            name: IdempotencyRecord(
                tenant_id=owner,
                key=f"order-18473-{name}",
                request_hash=b"h" * 32,
                state="completed",
                response_status=202,
                response_body={"id": str(uuid.uuid4())},
                expires_at=now + timedelta(hours=hours),
            )
            for name, owner, hours in (("expired", tenant, -1), ("live", tenant, 1), ("other", other, 1))
        }
        s.add_all(rows.values())
        await s.commit()

    outcome = await retention.run(only=[tenant])

    assert outcome.counts == {"deleted.idempotency_keys": 1}
    assert await load(IdempotencyRecord, rows["expired"].id) is None
    assert await load(IdempotencyRecord, rows["live"].id) is not None
    assert await load(IdempotencyRecord, rows["other"].id) is not None


async def test_work_in_flight_keeps_its_body(client):
    """A notification not yet sent, a callback not yet processed and a delivery still being retried
    need their bodies: taken by a later pass, once settled."""
    tenant, _ = await new_tenant(client)
    seeded = await seed(tenant, 45, status="queued", processed=False, delivery_status="pending")

    outcome = await retention.run(only=[tenant])

    assert outcome.counts == {"redacted.inbound_messages": 1}  # a stored inbound message is settled
    n = await load(Notification, seeded.notification)
    assert (n.variables, n.text, n.redacted_at) == (VARIABLES, TEXT, None)
    assert (await load(RawEvent, seeded.raw)).payload == {"form": FORM, "query": []}
    assert (await load(WebhookDelivery, seeded.delivery)).payload == EVENT
    async with session_factory()() as s:
        n = await s.get(Notification, seeded.notification)
        n.status = "delivered"
        await s.commit()
    await retention.run(only=[tenant])
    n = await load(Notification, seeded.notification)
    assert n.text is None and n.redacted_at is not None


async def test_batches_are_bounded_and_a_pass_that_stops_early_says_so(client, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 2)
    tenant, _ = await new_tenant(client)
    rows = [await seed(tenant, 40) for _ in range(5)]

    first = await retention.run(only=[tenant], max_batches=1)
    assert first.left and first.counts["redacted.notifications"] == 2
    second = await retention.run(only=[tenant])  # unbounded: until nothing is left
    assert not second.left and second.counts["redacted.notifications"] == 3
    for seeded in rows:
        await assert_redacted(seeded)


async def test_the_workers_maintenance_pass_applies_retention(client, monkeypatch):
    from app.notify import maintenance

    tenant, _ = await new_tenant(client)
    seeded = await seed(tenant, 31)
    monkeypatch.setattr(maintenance, "_next_retention", 0.0)

    done = await maintenance.run_once()

    assert done["retention"] >= 4
    await assert_redacted(seeded)
    assert maintenance._next_retention > 0  # not again before RETENTION_EVERY
    assert await maintenance.apply_retention() == 0


async def test_the_cli_runs_retention(client):
    from app.cli import main

    tenant, _ = await new_tenant(client)
    other, _ = await new_tenant(client)
    seeded, untouched = await seed(tenant, 31), await seed(other, 31)

    result = await asyncio.to_thread(CliRunner().invoke, main, ["retention", "run", "--tenant", str(tenant)])

    assert result.exit_code == 0, result.output
    assert '"redacted.notifications": 1' in result.output
    await assert_redacted(seeded)
    await assert_untouched(untouched)


async def test_a_redacted_delivery_cannot_be_resent(client):
    tenant, headers = await new_tenant(client)
    seeded = await seed(tenant, 31)
    await retention.run(only=[tenant])
    r = await client.post(
        f"/v1/webhook-endpoints/{seeded.endpoint}/deliveries/{seeded.delivery}/resend", headers=headers
    )
    assert r.status_code == 409, r.text
    assert "redacted" in r.json()["detail"]


@pytest.fixture
def sqlite_db(tmp_path, monkeypatch):
    """The embedded database (dev mode), migrated by the same revisions, as the app's only database."""
    from app.core import migrate

    url = f"sqlite+aiosqlite:///{tmp_path / 'retention.db'}"
    migrate.upgrade(url)
    engines: dict[int, Any] = {}

    def this_loop():
        key = id(asyncio.get_running_loop())
        if key not in engines:
            engine = db.make_engine(url)
            engines[key] = (engine, db.sessionmaker_for(engine))
        return engines[key]

    monkeypatch.setattr(db, "_for_this_loop", this_loop)


async def test_the_same_job_runs_on_sqlite(sqlite_db):
    assert db.get_engine().dialect.name == "sqlite"
    factory = db.session_factory()
    async with factory() as s:
        short = Tenant(name="short", slug="short", body_retention_days=7, metadata_retention_days=30)
        default = Tenant(name="default", slug="default")
        s.add_all([short, default])
        await s.commit()
    short_10, short_35 = await seed(short.id, 10, factory=factory), await seed(short.id, 35, factory=factory)
    default_10, default_35 = await seed(default.id, 10, factory=factory), await seed(default.id, 35, factory=factory)

    await retention.run()

    await assert_redacted(short_10, factory)
    await assert_deleted(short_35, factory)
    await assert_untouched(default_10, factory)
    await assert_redacted(default_35, factory)
    await assert_opt_out_and_audit_kept(short_35, factory)
    await db.get_engine().dispose()


# --- the settings API ---------------------------------------------------------------------------


async def test_settings_default_then_set_and_audited(client):
    _tenant, headers = await new_tenant(client)
    _other, other_headers = await new_tenant(client)
    assert (await client.get(SETTINGS, headers=headers)).json() == {"body_days": 30, "metadata_days": 400}

    r = await client.put(SETTINGS, json={"body_days": 60, "metadata_days": 730}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"body_days": 60, "metadata_days": 730}
    assert (await client.get(SETTINGS, headers=headers)).json() == {"body_days": 60, "metadata_days": 730}
    assert (await client.get(SETTINGS, headers=other_headers)).json() == {"body_days": 30, "metadata_days": 400}

    log = (await client.get("/v1/audit-log", params={"action": "retention.updated"}, headers=headers)).json()
    (entry,) = log["items"]
    assert entry["before"] == {"body_days": 30, "metadata_days": 400}
    assert entry["after"] == {"body_days": 60, "metadata_days": 730}
    assert entry["actor_type"] == "api_key"
    # A field left out is the default; the same values again are no change, so no second entry.
    assert (await client.put(SETTINGS, json={}, headers=headers)).json() == {"body_days": 30, "metadata_days": 400}
    await client.put(SETTINGS, json={}, headers=headers)
    log = (await client.get("/v1/audit-log", params={"action": "retention.updated"}, headers=headers)).json()
    assert len(log["items"]) == 2
    other_log = await client.get("/v1/audit-log", params={"action": "retention.updated"}, headers=other_headers)
    assert other_log.json()["items"] == []


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"body_days": 0}, "/body_days"),
        ({"body_days": 91}, "/body_days"),
        ({"body_days": "thirty"}, "/body_days"),
        ({"metadata_days": 29}, "/metadata_days"),
        ({"metadata_days": 3651}, "/metadata_days"),
        ({"body_days": 60, "metadata_days": 45}, "/body_days"),  # a body cannot outlive its row
        ({"bodies": 30}, None),
    ],
)
async def test_bad_settings_are_422_problems(client, body, pointer):
    _tenant, headers = await new_tenant(client)
    r = await client.put(SETTINGS, json=body, headers=headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if pointer:
        assert pointer in r.text
    assert (await client.get(SETTINGS, headers=headers)).json() == {"body_days": 30, "metadata_days": 400}


async def test_settings_need_admin_and_test_keys_only_read(client):
    tenant, _ = await new_tenant(client)
    sender = bearer(await make_key(client, str(tenant), ["notifications:send"]))
    assert (await client.get(SETTINGS, headers=sender)).status_code == 403
    assert (await client.put(SETTINGS, json={}, headers=sender)).status_code == 403
    test_admin = bearer(await make_key(client, str(tenant), ["admin"], environment="test"))
    assert (await client.get(SETTINGS, headers=test_admin)).status_code == 200
    assert (await client.put(SETTINGS, json={"body_days": 10}, headers=test_admin)).status_code == 403
    assert (await client.get(SETTINGS)).status_code == 401
    assert (await client.get(SETTINGS, headers=OPERATOR)).status_code == 401
