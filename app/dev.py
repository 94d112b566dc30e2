"""What `notifygw dev` prepares on every start and prints for a newcomer.

On first start: a demo tenant with an admin key and a send key; Twilio and SendGrid credentials
for it on the emulator mounted in this same server; an emulator Content template and the tenant
template that uses it; and a granted WhatsApp consent for the demo number.

The emulator keeps its world in memory, so every start re-creates the SAME emulator account,
SendGrid key (with its event-signing key pair) and Content template from ./.notifygw/demo.json.
That file (mode 0600) holds the demo's API keys and the emulator's credentials in clear: they are
fake and dev-only; production never stores a key in clear.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from datetime import UTC
from pathlib import Path
from typing import Any

from app.core.config import DEV_HOME, Settings

DEMO_FILE = DEV_HOME / "demo.json"
LAYOUT = 2  # demo.json of layout 1 held only the tenant and its keys: the rest is added on the next start

DEMO_PHONE = "+14155550123"  # not one of the emulator's magic numbers: a reachable WhatsApp user
DEMO_EMAIL = "demo@example.com"
FROM_EMAIL = "notifications@example.com"
TEMPLATE_KEY = "order_shipped"
CONTENT_VARIABLES = ["1", "2"]  # the Content API's own numbered placeholders
CONTENT_BODY = "Hi {{1}}, your order {{2}} has shipped."
# Seconds between one message's successive callbacks (and event batches). With none, on SQLite, callbacks
# for one message processed at once can each apply from a stale status and the last commit wins
# (e.g. "processed" after "delivered" leaves an email at "sent"). POST /_emulator/config changes it.
DEV_CALLBACK_SPACING = 0.25


# --- demo.json ----------------------------------------------------------------------------------


def _save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(mode=0o700, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a leftover file
    os.replace(tmp, path)


def _load(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


# --- the emulator ---------------------------------------------------------------------------------


def emulator_state(app: Any) -> Any:
    """The live EmulatorState of the emulator router mounted in `app`: what its handlers receive as `emu`.

    Not `opt["emulator_state"]`: Litestar deep-copies a router when it is registered, opt included, so
    that is a copy no handler uses. The `emu` provider is a plain function (deepcopy keeps functions as
    they are), and it returns the one state every request sees.
    """
    from channels.emulator.state import EmulatorState

    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            provider = handler.resolve_dependencies().get("emu")
            if provider is not None:
                state = provider.dependency()
                if isinstance(state, EmulatorState):
                    return state
    raise RuntimeError("the emulator is not mounted in this app (dev mode mounts it)")


def seed_emulator(emu: Any, demo: dict[str, Any], base: str) -> None:
    """Put the demo's account, SendGrid key and Content template into the emulator: the saved ones when
    demo.json has them, new ones (recorded into `demo`) otherwise. Webhook URLs follow this start's base URL."""
    from channels.emulator.state import SendgridKey

    # Real providers space a message's callbacks (sent, delivered, read) by network and human time; an
    # emulator firing them back to back only shows the demo racing itself (see DEV_CALLBACK_SPACING).
    emu.callback_delay_seconds = max(emu.callback_delay_seconds, DEV_CALLBACK_SPACING)
    inbound_url = f"{base}/webhooks/twilio/inbound"
    saved = demo.get("twilio")
    if saved:
        account = emu.accounts.get(saved["account_sid"]) or emu.create_account(
            friendly_name="notifygw dev demo",
            account_sid=saved["account_sid"],
            auth_token=saved["auth_token"],
            api_key_sid=saved["api_key_sid"],
            api_key_secret=saved["api_key_secret"],
            whatsapp_from=saved["whatsapp_from"],
            messaging_service_sid=saved["messaging_service_sid"],
        )
    else:
        account = emu.create_account(friendly_name="notifygw dev demo")
        demo["twilio"] = {
            "account_sid": account.sid,
            "auth_token": account.auth_token,
            "api_key_sid": account.api_key_sid,
            "api_key_secret": account.api_key_secret,
            "whatsapp_from": account.whatsapp_from,
            "messaging_service_sid": account.messaging_service_sid,
        }
    account.inbound_url = inbound_url

    saved = demo.get("sendgrid")
    if saved:
        key = emu.sendgrid_keys.get(saved["api_key"]) or emu.create_sendgrid_key(
            api_key=saved["api_key"], private_key=SendgridKey.load_private_key(saved["event_webhook_private_key"])
        )
    else:
        key = emu.create_sendgrid_key()
        demo["sendgrid"] = {
            "api_key": key.api_key,
            "event_webhook_private_key": key.private_key_pem,
            "event_webhook_public_key": key.public_key_b64,
        }
    # Events are verified with the tenant's registered public key and routed by tenant id in the path.
    key.event_webhook_url = f"{base}/webhooks/sendgrid/{demo['tenant_id']}" if demo.get("tenant_id") else None

    content_sid = demo.get("content_sid")
    if content_sid is None or content_sid not in emu.templates:
        template = emu.create_template(account.sid, CONTENT_VARIABLES, body=CONTENT_BODY, content_sid=content_sid)
        demo["content_sid"] = template.content_sid


# --- the database ---------------------------------------------------------------------------------


def _template_body(content_sid: str) -> Any:
    import msgspec

    from tenants.templates.schemas import TemplateBody

    return msgspec.convert(
        {
            "description": "notifygw dev demo: a WhatsApp Content template, with email for the fallback",
            "default_locale": "en",
            "locales": {
                "en": {
                    "whatsapp": {"content_sid": content_sid, "variables": ["name", "order"]},
                    "email": {
                        "subject": "Your order {{order}} has shipped",
                        "text": "Hi {{name}}, your order {{order}} has shipped.",
                        "html": "<p>Hi {{name}}, your order <b>{{order}}</b> has shipped.</p>",
                    },
                }
            },
        },
        TemplateBody,
    )


async def store_twilio(session: Any, tenant_id: uuid.UUID, values: dict[str, Any], *, actor: Any) -> None:
    """Store the emulator's Twilio credentials as PUT /v1/providers/twilio does, without the live check
    (the emulator answers only once the server is up)."""
    import msgspec

    from tenants.credentials import service
    from tenants.credentials.schemas import TwilioCredentialsIn
    from tenants.credentials.specs import TWILIO

    data = msgspec.convert(
        {k: values[k] for k in ("account_sid", "auth_token", "api_key_sid", "api_key_secret", "whatsapp_from")},
        TwilioCredentialsIn,
    )
    await service.store(session, TWILIO, tenant_id, data, actor=actor)


async def store_sendgrid(session: Any, tenant_id: uuid.UUID, values: dict[str, Any], *, actor: Any) -> None:
    """Store the emulator's SendGrid key as PUT /v1/providers/sendgrid does, without the live check."""
    import msgspec

    from tenants.credentials import service
    from tenants.credentials.schemas import SendgridCredentialsIn
    from tenants.credentials.specs import SENDGRID, check_public_key

    data = msgspec.convert(
        {
            "api_key": values["api_key"],
            "from_email": FROM_EMAIL,
            "from_name": "notifygw demo",
            "event_webhook_public_key": values["event_webhook_public_key"],
        },
        SendgridCredentialsIn,
    )
    if data.event_webhook_public_key:  # as PUT /v1/providers/sendgrid checks it (tenants/credentials/specs.py)
        check_public_key(data.event_webhook_public_key)
    await service.store(session, SENDGRID, tenant_id, data, actor=actor)


async def _existing_tenant(session: Any, demo: dict[str, Any]) -> Any:
    from sqlalchemy import select

    from tenants.accounts.models import Tenant

    if demo.get("tenant_id"):
        found = await session.get(Tenant, uuid.UUID(demo["tenant_id"]))
        if found is not None:
            return found
    return (await session.execute(select(Tenant).where(Tenant.slug == "demo"))).scalar_one_or_none()


async def _revalidate(session: Any, tenant_id: uuid.UUID, demo: dict[str, Any]) -> None:
    """The demo's emulator credentials are valid by construction once re-seeded: undo an "invalid" mark that
    a send left while the emulator did not know them (say, one made by an older `notifygw dev`)."""
    from tenants.audit import service as audit
    from tenants.auth import OPERATOR
    from tenants.credentials import cache
    from tenants.credentials.service import find_twilio

    row = await find_twilio(session, tenant_id)
    if row is None or row.account_sid != demo["twilio"]["account_sid"] or row.status != "invalid":
        return
    before = {"status": row.status, "reason": row.status_reason}
    row.status, row.status_reason = "valid", None
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=OPERATOR,
        action="provider.twilio.revalidated",
        target_type="twilio_credentials",
        target_id=row.account_sid,
        before=before,
        after={"status": "valid", "reason": "notifygw dev re-seeded the emulator with these credentials"},
    )
    cache.invalidate(row.account_sid)


async def sync_contents_from(emu: Any, session: Any, tenant_id: uuid.UUID, account_sid: str) -> None:
    """The demo account's Content templates, synced as GET /v1/ContentAndApprovals lists them, read from the
    in-process emulator's state (the emulator answers over HTTP only once the server is up)."""
    from types import SimpleNamespace

    from channels.twilio_content import item_of
    from tenants.templates import sync

    items = [
        item_of(SimpleNamespace(**t.content_and_approvals()))
        for t in emu.templates.values()
        if t.account_sid == account_sid
    ]
    await sync.apply(session, tenant_id, account_sid, items)


async def _prepare_database(demo: dict[str, Any], *, seed: bool, emu: Any = None) -> float | None:
    """Make sure the demo exists in the database; returns the demo number's last inbound time (epoch seconds).

    With seed=False only a missing tenant (a deleted database) brings the seeding back: a demo that the
    newcomer has since changed through the API is left as it is.
    """
    from app.core.db import dispose_engine, session_factory
    from tenants.accounts import service as accounts
    from tenants.api_keys import service as keys
    from tenants.auth import OPERATOR
    from tenants.contacts import identifiers
    from tenants.contacts import service as contacts
    from tenants.templates import service as templates
    from tenants.templates.repository import TemplateRepository

    try:
        async with session_factory()() as session:
            tenant = await _existing_tenant(session, demo)
            if tenant is None or str(tenant.id) != demo.get("tenant_id") or not demo.get("admin_key"):
                seed = True
                if tenant is None:
                    tenant = await accounts.create_tenant(session, name="Demo", slug="demo", actor=OPERATOR)
                # Keys are stored hashed: ones not in demo.json can't be shown again, so mint new ones.
                admin = await keys.create_key(
                    session, tenant.id, name="demo admin", scopes=["admin"], environment="live", actor=OPERATOR
                )
                send = await keys.create_key(
                    session,
                    tenant.id,
                    name="demo sender",
                    scopes=["notifications:send", "notifications:read"],
                    environment="live",
                    actor=OPERATOR,
                )
                demo.update(tenant_id=str(tenant.id), admin_key=admin.key, send_key=send.key)
            phone = identifiers.phone(DEMO_PHONE, "US")
            if seed:
                await store_twilio(session, tenant.id, demo["twilio"], actor=OPERATOR)
                if emu is not None:
                    await sync_contents_from(emu, session, tenant.id, demo["twilio"]["account_sid"])
                await store_sendgrid(session, tenant.id, demo["sendgrid"], actor=OPERATOR)
                body = _template_body(demo["content_sid"])
                if await TemplateRepository(session, tenant.id).by_key(TEMPLATE_KEY) is None:
                    await templates.create(session, tenant.id, TEMPLATE_KEY, body, actor=OPERATOR)
                else:
                    await templates.replace(session, tenant.id, TEMPLATE_KEY, body, actor=OPERATOR)
                contact = await contacts.resolve(session, tenant.id, [phone, identifiers.email(DEMO_EMAIL)])
                if await contacts.consent_state(session, tenant.id, contact.id, "whatsapp") != "granted":
                    await contacts.record_consent(
                        session,
                        tenant.id,
                        contact,
                        channel="whatsapp",
                        status="granted",
                        source="notifygw_dev",
                        proof="The demo user agreed to order updates on WhatsApp (made up by notifygw dev).",
                        captured_at=None,
                        actor=OPERATOR,
                    )
            else:
                await _revalidate(session, tenant.id, demo)
            await session.commit()
            found = await contacts.find(session, tenant.id, phone)
            last = await contacts.last_inbound(session, tenant.id, found.id, None) if found else None
            if last is None:
                return None
            return (last if last.tzinfo else last.replace(tzinfo=UTC)).timestamp()
    finally:
        await dispose_engine()  # this loop ends here; the server opens its own connections


def ensure_demo(app: Any, settings: Settings) -> dict[str, Any]:
    """Create the demo on first start, restore the emulator's side of it on every start."""
    demo = _load(DEMO_FILE)
    seed = demo.get("layout") != LAYOUT
    emu = emulator_state(app)
    seed_emulator(emu, demo, settings.public_base_url)
    last_inbound = asyncio.run(_prepare_database(demo, seed=seed, emu=emu))
    seed_emulator(emu, demo, settings.public_base_url)  # again: the event webhook URL needs the tenant id
    if last_inbound is not None:
        # The gateway remembers the demo user's last message; the restarted emulator must agree on the window.
        emu.windows[(demo["twilio"]["whatsapp_from"], DEMO_PHONE)] = last_inbound
    demo["layout"] = LAYOUT
    _save(DEMO_FILE, demo)
    return demo


# --- the banner -------------------------------------------------------------------------------------


def _notify(body: dict[str, Any]) -> str:
    return (
        'curl -s "$NGW/v1/notifications" -H "Authorization: Bearer $SEND_KEY" \\\n'
        f"       -H 'Content-Type: application/json' -d '{json.dumps(body)}' \\\n"
        '       | sed -E \'s/.*"id": *"([^"]+)".*/\\1/\''
    )


def banner(settings: Settings, demo: dict[str, Any]) -> str:
    base = settings.public_base_url
    to = {"phone": DEMO_PHONE, "email": DEMO_EMAIL}
    template = _notify({"to": to, "template": TEMPLATE_KEY, "variables": {"name": "Ava", "order": "18473"}})
    text = _notify({"to": to, "text": "Your parcel is at the door."})
    inbound = json.dumps(
        {"account_sid": demo["twilio"]["account_sid"], "from": DEMO_PHONE, "body": "Hi! Where is my parcel?"}
    )
    get = 'curl -s "$NGW/v1/notifications/{}" -H "Authorization: Bearer $SEND_KEY" | python3 -m json.tool'
    return "\n".join(
        [
            "",
            f"notifygw dev is running at {base}",
            f"  database: {settings.database_url}",
            "  queue:    in-process (Dramatiq StubBroker, worker in this process)",
            f"  emulator: Twilio and SendGrid at {base} (control API under /_emulator/)",
            f"  operator token: in {DEV_HOME / 'operator_token'}",
            f"  API reference:  {base}/schema",
            f"  admin console:  {base}/console  (sign in with the demo admin key below)",
            f"  operator view:  {base}/console/operator/sign-in  (sign in with the operator token)",
            "",
            f"Demo tenant {demo['tenant_id']} (slug demo)",
            f"  admin key: {demo['admin_key']}",
            f"  send key:  {demo['send_key']}",
            f"  Twilio (emulated):   account {demo['twilio']['account_sid']}, sender {demo['twilio']['whatsapp_from']}",
            f"  SendGrid (emulated): events to {base}/webhooks/sendgrid/{demo['tenant_id']}",
            f"  template {TEMPLATE_KEY!r} (Content {demo['content_sid']})",
            f"  demo user {DEMO_PHONE} ({DEMO_EMAIL}): WhatsApp consent granted",
            f"  fake, dev-only credentials: {DEMO_FILE}",
            "",
            "Try it (bash, in order):",
            "",
            f"  export NGW={base} SEND_KEY={demo['send_key']}",
            "",
            f"  # 1. A template notification to {DEMO_PHONE}: a WhatsApp template needs no open window -> delivered, then read",
            f'  N1=$({template}); echo "$N1"',
            "",
            "  # 2. Text only, same number: the 24h window is closed, so WhatsApp can't carry it -> email",
            f'  N2=$({text}); echo "$N2"',
            "",
            "  # 3. A few seconds later: status, channel, attempts, provider events and routing decisions of each",
            "  " + get.format("$N1"),
            "  " + get.format("$N2"),
            "",
            "  # 4. The demo user writes in on WhatsApp (emulator control API): that opens the 24h window ...",
            f"  curl -s \"$NGW/_emulator/twilio/inbound\" -H 'Content-Type: application/json' -d '{inbound}'; echo",
            "  # ... once the gateway has processed it (webhooks are handled asynchronously; this takes a moment) ...",
            f'  until curl -s "$NGW/v1/contacts?phone=%2B{DEMO_PHONE[1:]}" -H "Authorization: Bearer $SEND_KEY" '
            "| grep '\"window_open\":true' >/dev/null; do sleep 0.2; done",
            "  # ... the same text now goes on WhatsApp:",
            f'  N3=$({text}); echo "$N3"',
            "  " + get.format("$N3"),
            "",
            f'  What the emulator sent: curl -s "$NGW/_emulator/twilio/messages?to=whatsapp:%2B{DEMO_PHONE[1:]}"',
            '                          curl -s "$NGW/_emulator/sendgrid/messages"',
            "  (After step 4 the window stays open for 24 h, so step 2 goes on WhatsApp too; rm -rf .notifygw starts over.)",
            "",
        ]
    )


def bootstrap(app: Any, settings: Settings) -> str:
    return banner(settings, ensure_demo(app, settings))
