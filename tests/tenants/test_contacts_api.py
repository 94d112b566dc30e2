"""GET/DELETE /v1/contacts: filters, pagination, the state a contact shows, scopes, 404s and erasure.

Data that only inbound WhatsApp can create (BSUID history, windows, inbound messages, stored
callbacks) is written with the contacts service or the models directly; the emulator-driven
paths are in tests/app/test_bsuid_e2e.py.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select

from app.core.db import session_factory, utcnow
from app.notify.models import Attempt, Decision, Notification
from app.people import service as people
from app.webhooks.models import InboundMessage, RawEvent, WebhookDelivery, WebhookEndpoint
from tenants.audit.models import AuditEntry
from tenants.contacts import identifiers
from tenants.contacts import service as contacts
from tenants.contacts.models import ConsentEntry, ContactIdentifier, Suppression
from tests.factories import bearer, make_key, tenant_with_key

PHONE, EMAIL = "+14155550123", "ava@example.com"
BSUID_OLD, BSUID_NEW = "US.13491208655302741918", "US.98765432109876543210"
SENDER = "whatsapp:+14155238886"
PROBLEM = "application/problem+json"


async def _inbound(tenant_id: str, *, phone: str | None, bsuid: str | None, profile: str | None = None) -> uuid.UUID:
    """What the webhook worker does for an inbound message: create or merge the contact (and commit)."""
    async with session_factory()() as s:
        contact = await people.link_inbound(
            s,
            uuid.UUID(tenant_id),
            phone=identifiers.phone(phone) if phone else None,
            bsuid=identifiers.bsuid(bsuid) if bsuid else None,
            profile_name=profile,
        )
        assert contact is not None
        await s.commit()
        return contact.id


async def _window(tenant_id: str, contact_id: uuid.UUID, sender: str, hours_ago: float) -> None:
    async with session_factory()() as s:
        await contacts.touch_window(s, uuid.UUID(tenant_id), contact_id, sender, utcnow() - timedelta(hours=hours_ago))
        await s.commit()


async def _consent(client, headers, **fields):
    # A consent is for a channel the person is named on (an email alone cannot consent to WhatsApp).
    channel = "whatsapp" if "phone" in fields or "whatsapp_user_id" in fields else "email"
    body = {"channel": channel, "status": "granted", "source": "signup", **fields}
    r = await client.post("/v1/consents", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["contact_id"]


async def test_list_filters_by_any_identifier_including_bsuid_history(client):
    tenant, admin = await tenant_with_key(client)
    cid = await _inbound(tenant["id"], phone=PHONE, bsuid=BSUID_OLD, profile="Ava")
    assert await _inbound(tenant["id"], phone=PHONE, bsuid=BSUID_NEW) == cid  # Meta issued a new BSUID
    await _consent(client, admin, phone=PHONE, email=EMAIL)  # attaches the email to the same person
    other = await _consent(client, admin, email="bo@example.com")

    everyone = (await client.get("/v1/contacts", headers=admin)).json()
    assert [c["id"] for c in everyone["items"]] == [other, str(cid)] and everyone["next_cursor"] is None
    for params in (
        {"phone": PHONE},
        {"phone": "(415) 555-0123"},
        {"email": "AVA@example.com"},
        {"whatsapp_user_id": BSUID_NEW},
        {"whatsapp_user_id": f"whatsapp:{BSUID_OLD}"},
        {"phone": PHONE, "email": EMAIL},
    ):
        r = await client.get("/v1/contacts", params=params, headers=admin)
        assert r.status_code == 200, (params, r.text)
        (item,) = r.json()["items"]
        assert item["id"] == str(cid), params
        assert (item["phone"], item["whatsapp_user_id"], item["email"]) == (PHONE, BSUID_NEW, EMAIL)
        assert item["profile_name"] == "Ava" and item["suppressed"] == [] and item["erased_at"] is None
    for params in (
        {"phone": "+14155550199"},
        {"whatsapp_user_id": "BR.1"},
        {"phone": PHONE, "email": "bo@example.com"},
    ):
        r = await client.get("/v1/contacts", params=params, headers=admin)
        assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}, params


async def test_malformed_filters_are_422_problems_pointing_at_the_field(client):
    _, admin = await tenant_with_key(client)
    for params, pointer in (
        ({"whatsapp_user_id": "not a bsuid"}, "/whatsapp_user_id"),
        ({"whatsapp_user_id": "us.123"}, "/whatsapp_user_id"),
        ({"whatsapp_user_id": "US." + "1" * 129}, "/whatsapp_user_id"),
        ({"phone": "+1 555"}, "/phone"),
        ({"email": "nope"}, "/email"),
        ({"cursor": "garbage!"}, "/cursor"),
    ):
        r = await client.get("/v1/contacts", params=params, headers=admin)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
        assert pointer in [e["pointer"] for e in r.json()["errors"]], (params, r.json())
    assert (await client.get("/v1/contacts", params={"limit": 0}, headers=admin)).status_code in (400, 422)


async def test_cursor_pagination_walks_every_contact_once(client):
    _, admin = await tenant_with_key(client)
    made = [await _consent(client, admin, email=f"p{i}@example.com") for i in range(5)]
    seen, cursor = [], None
    while True:
        r = await client.get(
            "/v1/contacts", params={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=admin
        )
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 2
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))


async def test_detail_shows_identifiers_consent_suppression_and_window(client):
    tenant, admin = await tenant_with_key(client)
    cid = await _inbound(tenant["id"], phone=PHONE, bsuid=BSUID_OLD, profile="Ava")
    await _inbound(tenant["id"], phone=PHONE, bsuid=BSUID_NEW)
    await _consent(client, admin, phone=PHONE, email=EMAIL, status="granted")
    await _consent(client, admin, phone=PHONE, status="withdrawn", source="call centre")
    r = await client.post(
        "/v1/suppressions", json={"phone": PHONE, "channel": "whatsapp", "reason": "complaint"}, headers=admin
    )
    assert r.status_code == 201, r.text
    suppression_id = r.json()["id"]
    await _window(tenant["id"], cid, SENDER, hours_ago=2)
    await _window(tenant["id"], cid, "whatsapp:+14155230000", hours_ago=30)

    r = await client.get(f"/v1/contacts/{cid}", headers=admin)
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["id"] == str(cid) and c["profile_name"] == "Ava" and c["erased_at"] is None
    by_value = {i["value"]: i for i in c["identifiers"]}
    assert set(by_value) == {PHONE, BSUID_OLD, BSUID_NEW, EMAIL}
    assert by_value[BSUID_OLD]["kind"] == "whatsapp_user_id" and by_value[BSUID_OLD]["current"] is False
    assert by_value[BSUID_NEW]["current"] is True and by_value[PHONE]["kind"] == "phone"
    assert not any(i["erased"] for i in c["identifiers"])
    assert c["consent"]["whatsapp"]["status"] == "withdrawn" and c["consent"]["whatsapp"]["source"] == "call centre"
    assert c["consent"]["email"] == {"status": None, "source": None, "captured_at": None}
    assert c["suppression"]["whatsapp"]["suppressed"] is True and c["suppression"]["whatsapp"]["reason"] == "complaint"
    assert c["suppression"]["whatsapp"]["suppression_id"] == suppression_id
    assert c["suppression"]["email"]["suppressed"] is False
    window = c["window"]
    assert window["open"] is True
    open_, closed = window["senders"]
    assert open_["sender"] == SENDER and open_["open"] is True and closed["open"] is False
    assert window["last_inbound_at"] == open_["last_inbound_at"] and window["expires_at"] == open_["expires_at"]
    gap = datetime.fromisoformat(open_["expires_at"]) - datetime.fromisoformat(open_["last_inbound_at"])
    assert gap == timedelta(hours=24)

    summary = (await client.get("/v1/contacts", params={"phone": PHONE}, headers=admin)).json()["items"][0]
    assert summary["suppressed"] == ["whatsapp"]


async def test_list_shows_whether_the_window_is_open_now(client):
    tenant, admin = await tenant_with_key(client)
    recent = await _inbound(tenant["id"], phone=PHONE, bsuid=None)
    stale = await _inbound(tenant["id"], phone="+14155550199", bsuid=None)
    never = await _consent(client, admin, email=EMAIL)
    await _window(tenant["id"], recent, SENDER, hours_ago=1)
    await _window(tenant["id"], stale, SENDER, hours_ago=25)
    items = (await client.get("/v1/contacts", headers=admin)).json()["items"]
    assert {i["id"]: i["window_open"] for i in items} == {str(recent): True, str(stale): False, never: False}


async def test_a_contact_with_no_window_shows_it_closed(client):
    _, admin = await tenant_with_key(client)
    cid = await _consent(client, admin, email=EMAIL)
    c = (await client.get(f"/v1/contacts/{cid}", headers=admin)).json()
    assert c["window"] == {"open": False, "last_inbound_at": None, "expires_at": None, "senders": []}
    assert [i["kind"] for i in c["identifiers"]] == ["email"]


async def test_scopes(client):
    tenant, admin = await tenant_with_key(client, ["admin"])
    cid = await _consent(client, admin, email=EMAIL)
    reader = bearer(await make_key(client, tenant["id"], ["notifications:read"]))
    sender = bearer(await make_key(client, tenant["id"], ["notifications:send"]))
    assert (await client.get("/v1/contacts", headers=reader)).status_code == 200
    assert (await client.get(f"/v1/contacts/{cid}", headers=reader)).status_code == 200
    for method, path in (("GET", "/v1/contacts"), ("GET", f"/v1/contacts/{cid}"), ("DELETE", f"/v1/contacts/{cid}")):
        r = await client.request(method, path, headers=sender)
        assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM), (method, path, r.text)
    r = await client.delete(f"/v1/contacts/{cid}", headers=reader)
    assert r.status_code == 403, "erasure needs admin"
    assert (await client.get("/v1/contacts")).status_code == 401
    assert (await client.delete(f"/v1/contacts/{cid}", headers=admin)).status_code == 204


async def test_unknown_and_other_tenants_contacts_are_404(client):
    _tenant_a, admin_a = await tenant_with_key(client)
    _, admin_b = await tenant_with_key(client)
    cid = await _consent(client, admin_a, phone=PHONE)
    for method in ("GET", "DELETE"):
        for path in (f"/v1/contacts/{uuid.uuid4()}", f"/v1/contacts/{cid}"):
            r = await client.request(method, path, headers=admin_b)
            assert r.status_code == 404, (method, path, r.text)
            assert r.headers["content-type"].startswith(PROBLEM)
            assert set(r.json()) <= {"type", "title", "status", "detail", "instance", "request_id"}
        assert (await client.request(method, "/v1/contacts/not-a-uuid", headers=admin_a)).status_code == 404
    assert (await client.get("/v1/contacts", params={"phone": PHONE}, headers=admin_b)).json()["items"] == []
    # A's contact survived B's attempt to erase it.
    assert (await client.get(f"/v1/contacts/{cid}", headers=admin_a)).json()["identifiers"][0]["value"] == PHONE


async def _seed_history(tenant_id: str, cid: uuid.UUID) -> dict[str, uuid.UUID]:
    """Inbound messages, stored callbacks and notifications in every state, as the pipeline leaves them."""
    tid = uuid.UUID(tenant_id)
    ids: dict[str, uuid.UUID] = {}
    async with session_factory()() as s:
        s.add(
            InboundMessage(
                tenant_id=tid,
                contact_id=cid,
                message_sid="SM" + "1" * 32,
                from_address=f"whatsapp:{PHONE}",
                to_address=SENDER,
                body="STOP",
                media=[{"url": "https://x/y.jpg", "content_type": "image/jpeg"}],
                profile_name="Ava",
                wa_id=PHONE[1:],
                button_payload="order-18473",
                keyword="stop",
            )
        )
        inbound_form = [
            ["MessageSid", "SM" + "1" * 32],
            ["From", f"whatsapp:{PHONE}"],
            ["To", SENDER],
            ["Body", "STOP"],
            ["ProfileName", "Ava"],
            ["WaId", PHONE[1:]],
            ["ExternalUserId", f"whatsapp:{BSUID_OLD}"],
            ["AccountSid", "AC" + "0" * 32],
        ]
        s.add(
            RawEvent(
                tenant_id=tid,
                kind="inbound",
                dedupe_key="tok-1",
                payload={"form": inbound_form, "query": []},
                processed_at=utcnow(),
            )
        )
        # Someone else's message, in the same tenant: untouched.
        s.add(
            RawEvent(
                tenant_id=tid,
                kind="inbound",
                dedupe_key="tok-2",
                processed_at=utcnow(),
                payload={
                    "form": [["MessageSid", "SM" + "2" * 32], ["From", "whatsapp:+14155550188"], ["Body", "hello"]],
                    "query": [],
                },
            )
        )
        base = dict(
            tenant_id=tid, contact_id=cid, template_key=None, channels=["whatsapp", "email"], environment="live"
        )
        accepted = Notification(
            **base,
            recipient={"phone": PHONE, "email": EMAIL},
            variables={"name": "Ava"},
            text="Your table is ready, Ava",
            metadata_={"customer": "Ava"},
            status="accepted",
        )
        queued = Notification(
            **base, recipient={"phone": PHONE}, variables={}, text="Hi Ava", metadata_={}, status="queued"
        )
        done = Notification(
            **base,
            recipient={"phone": PHONE},
            variables={"name": "Ava"},
            text="Hello Ava",
            media_url="https://cdn.example.com/invoice-ava.pdf",
            metadata_={},
            status="failed",
            channel="whatsapp",
        )
        s.add_all([accepted, queued, done])
        await s.flush()
        s.add(
            Attempt(
                tenant_id=tid,
                notification_id=queued.id,
                channel="whatsapp",
                kind="session",
                provider="twilio",
                sender=SENDER,
                status="pending",
            )
        )
        failed = Attempt(
            tenant_id=tid,
            notification_id=done.id,
            channel="whatsapp",
            kind="session",
            provider="twilio",
            sender=SENDER,
            status="failed",
            provider_message_id="SM" + "3" * 32,
            error_code="21211",
            error_message=f"Invalid 'To' Phone Number: {PHONE}",
        )
        s.add(failed)
        await s.flush()
        s.add(
            Decision(
                tenant_id=tid,
                notification_id=done.id,
                step="outcome",
                result="invalid_recipient",
                detail=f"Twilio 21211: Invalid 'To' Phone Number: {PHONE}",
            )
        )
        s.add(
            RawEvent(
                tenant_id=tid,
                kind="status",
                dedupe_key="tok-3",
                processed_at=utcnow(),
                payload={
                    "form": [
                        ["MessageSid", "SM" + "3" * 32],
                        ["MessageStatus", "failed"],
                        ["To", f"whatsapp:{PHONE}"],
                        ["ErrorCode", "21211"],
                    ],
                    "query": [["a", str(failed.id)]],
                },
            )
        )
        s.add(
            RawEvent(
                tenant_id=tid,
                kind="sendgrid",
                dedupe_key="sg-1",
                processed_at=utcnow(),
                payload={
                    "event": {
                        "event": "bounce",
                        "email": EMAIL,
                        "reason": f"550 <{EMAIL}> unknown",
                        "sg_event_id": "sg-1",
                        "notifygw_attempt_id": str(uuid.uuid4()),
                    }
                },
            )
        )
        # Events already queued for the tenant's own webhook endpoint (app/endpoints): one about them, one not.
        endpoint = WebhookEndpoint(
            tenant_id=tid, url="https://app.example.com/hook", events=["message.received"], secret_enc="sealed"
        )
        s.add(endpoint)
        await s.flush()
        s.add(
            WebhookDelivery(
                tenant_id=tid,
                endpoint_id=endpoint.id,
                event_type="message.received",
                payload={
                    "type": "message.received",
                    "timestamp": "2026-01-01T00:00:00.000Z",
                    "data": {
                        "id": str(uuid.uuid4()),
                        "message_sid": "SM" + "1" * 32,
                        "contact_id": str(cid),
                        "from": f"whatsapp:{PHONE}",
                        "to": SENDER,
                        "body": "STOP",
                        "profile_name": "Ava",
                        "wa_id": PHONE[1:],
                    },
                },
            )
        )
        s.add(
            WebhookDelivery(
                tenant_id=tid,
                endpoint_id=endpoint.id,
                event_type="notification.updated",
                payload={
                    "type": "notification.updated",
                    "timestamp": "2026-01-01T00:00:00.000Z",
                    "data": {"id": str(done.id), "status": "failed", "metadata": {"customer": "Ava"}},
                },
            )
        )
        s.add(
            WebhookDelivery(
                tenant_id=tid,
                endpoint_id=endpoint.id,
                event_type="message.received",
                payload={
                    "type": "message.received",
                    "data": {"id": str(uuid.uuid4()), "contact_id": str(uuid.uuid4()), "body": "hi"},
                },
            )
        )
        await s.commit()
        ids.update(accepted=accepted.id, queued=queued.id, done=done.id)
    return ids


async def test_erasure_redacts_everywhere_and_keeps_hashes_suppression_and_audit(client):
    tenant, admin = await tenant_with_key(client)
    cid = await _inbound(tenant["id"], phone=PHONE, bsuid=BSUID_OLD, profile="Ava")
    await _consent(
        client, admin, phone=PHONE, email=EMAIL, proof="ticked the box", ip="203.0.113.7", user_agent="Firefox"
    )
    await client.post(
        "/v1/suppressions", json={"phone": PHONE, "channel": "whatsapp", "reason": "opted_out"}, headers=admin
    )
    await _window(tenant["id"], cid, SENDER, hours_ago=1)
    ids = await _seed_history(tenant["id"], cid)

    r = await client.delete(f"/v1/contacts/{cid}", headers=admin)
    assert r.status_code == 204, r.text

    c = (await client.get(f"/v1/contacts/{cid}", headers=admin)).json()
    assert c["erased_at"] is not None and c["profile_name"] is None and c["whatsapp_username"] is None
    assert len(c["identifiers"]) == 3 and all(i["value"] is None and i["erased"] for i in c["identifiers"])
    assert c["suppression"]["whatsapp"]["suppressed"] is True
    assert c["consent"]["whatsapp"]["status"] == "granted" and c["window"]["open"] is True
    # The keyed hashes stay: every identifier still finds the contact.
    for params in ({"phone": PHONE}, {"email": EMAIL}, {"whatsapp_user_id": BSUID_OLD}):
        (item,) = (await client.get("/v1/contacts", params=params, headers=admin)).json()["items"]
        assert item["id"] == str(cid) and item["phone"] is None and item["suppressed"] == ["whatsapp"]

    async with session_factory()() as s:
        rows = (await s.execute(select(ContactIdentifier).where(ContactIdentifier.contact_id == cid))).scalars().all()
        assert {r.value_hash for r in rows} == {
            identifiers.phone(PHONE).hash,
            identifiers.email(EMAIL).hash,
            identifiers.bsuid(BSUID_OLD).hash,
        }
        assert (
            await s.execute(select(Suppression).where(Suppression.contact_id == cid))
        ).scalar_one().channel == "whatsapp"
        entry = (await s.execute(select(ConsentEntry).where(ConsentEntry.contact_id == cid))).scalar_one()
        assert (entry.proof, entry.ip, entry.user_agent) == (None, None, None) and entry.status == "granted"
        msg = (await s.execute(select(InboundMessage))).scalar_one()
        assert (msg.body, msg.media, msg.profile_name, msg.from_address, msg.wa_id, msg.button_payload) == (
            None,
            [],
            None,
            None,
            None,
            None,
        )
        assert msg.keyword == "stop" and msg.to_address == SENDER
        notifications = {n.id: n for n in (await s.execute(select(Notification))).scalars()}
        for n in notifications.values():
            assert (n.recipient, n.variables, n.text, n.media_url, n.metadata_) == ({}, {}, None, None, {})
        assert notifications[ids["accepted"]].status == "failed" and notifications[ids["queued"]].status == "failed"
        assert notifications[ids["done"]].status == "failed"
        attempts = {a.notification_id: a for a in (await s.execute(select(Attempt))).scalars()}
        assert attempts[ids["queued"]].status == "canceled" and attempts[ids["queued"]].error_class == "contact_erased"
        assert attempts[ids["done"]].error_message == "Invalid 'To' Phone Number: [erased]"
        decisions = (await s.execute(select(Decision))).scalars().all()
        assert {(d.notification_id, d.result) for d in decisions if d.step == "erasure"} == {
            (ids["accepted"], "canceled"),
            (ids["queued"], "canceled"),
        }
        assert all(PHONE not in (d.detail or "") for d in decisions)
        events = {e.dedupe_key: e.payload for e in (await s.execute(select(RawEvent))).scalars()}
        assert events["tok-1"]["redacted"] and dict(events["tok-1"]["form"]) == {
            "MessageSid": "SM" + "1" * 32,
            "AccountSid": "AC" + "0" * 32,
        }
        assert dict(events["tok-3"]["form"]) == {
            "MessageSid": "SM" + "3" * 32,
            "MessageStatus": "failed",
            "ErrorCode": "21211",
        }
        assert events["tok-3"]["query"] == [["a", str(attempts[ids["done"]].id)]]
        assert events["sg-1"]["event"] == {
            "event": "bounce",
            "sg_event_id": "sg-1",
            "notifygw_attempt_id": events["sg-1"]["event"]["notifygw_attempt_id"],
        }
        assert events["tok-2"] == {
            "form": [["MessageSid", "SM" + "2" * 32], ["From", "whatsapp:+14155550188"], ["Body", "hello"]],
            "query": [],
        }, "another person's message is untouched"
        deliveries = {
            d.event_type + str(d.payload.get("redacted")): d.payload["data"]
            for d in (await s.execute(select(WebhookDelivery))).scalars()
        }
        assert deliveries["message.receivedTrue"] == {
            "id": deliveries["message.receivedTrue"]["id"],
            "message_sid": "SM" + "1" * 32,
            "contact_id": str(cid),
            "to": SENDER,
        }
        assert deliveries["notification.updatedTrue"] == {"id": str(ids["done"]), "status": "failed"}
        assert deliveries["message.receivedNone"]["body"] == "hi", "another person's event is untouched"
        (audit,) = (await s.execute(select(AuditEntry).where(AuditEntry.action == "contact.erased"))).scalars().all()
        assert audit.target_type == "contact" and audit.target_id == str(cid) and audit.actor_type == "api_key"
        assert audit.after["suppressions_kept"] == ["whatsapp"] and audit.after["notifications_canceled"] == 2
        assert (
            audit.after["provider_events"] == 3
            and audit.after["webhook_deliveries"] == 2
            and audit.after["inbound_messages"] == 1
            and audit.after["repeat"] is False
        )
        dumped = json.dumps([audit.before, audit.after])
        for secret in (PHONE, PHONE[1:], EMAIL, BSUID_OLD, "Ava"):
            assert secret not in dumped


async def test_erasure_is_idempotent_and_a_later_request_still_finds_the_suppressed_person(client):
    _tenant, admin = await tenant_with_key(client)
    r = await client.post(
        "/v1/suppressions", json={"phone": PHONE, "channel": "whatsapp", "reason": "opted_out"}, headers=admin
    )
    cid = r.json()["contact_id"]
    assert (await client.delete(f"/v1/contacts/{cid}", headers=admin)).status_code == 204
    assert (await client.delete(f"/v1/contacts/{cid}", headers=admin)).status_code == 204
    r = await client.post("/v1/notifications", json={"to": {"phone": PHONE}, "text": "hi"}, headers=admin)
    assert r.status_code == 202, r.text
    n = (await client.get(f"/v1/notifications/{r.json()['id']}", headers=admin)).json()
    assert n["contact_id"] == cid, "the erased phone's hash still names the same contact"
    sup = (await client.get("/v1/suppressions", params={"phone": PHONE}, headers=admin)).json()["items"]
    assert [s["contact_id"] for s in sup] == [cid]
    audits = (await client.get("/v1/audit-log", params={"action": "contact.erased"}, headers=admin)).json()["items"]
    assert [a["after"]["repeat"] for a in audits] == [True, False]
