"""The routing decision, in the documented order, with every step recorded as data.

1 suppression, 2 credentials (and an address to send to), 3 consent, 4 the 24h window,
5 WhatsApp through the Messaging Service for the recipient's country, 6 react to the outcome,
7 email. Functions here take a session and flush; the actor that calls them commits.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.metrics import registry as metrics
from app.notify.models import Attempt, Decision, Notification
from app.notify.status import notification_status
from app.outbox import service as outbox
from channels.base import FailureClass
from channels.phone import region_of
from tenants.audit.service import SystemActor
from tenants.contacts import service as contacts
from tenants.contacts.service import WINDOW
from tenants.credentials import service as credentials
from tenants.routing.schemas import RoutingPolicyDoc
from tenants.routing.service import get_policy, messaging_service_for
from tenants.templates import service as templates
from tenants.templates.rendering import resolve_locale

SEND_WHATSAPP = "attempt.send_whatsapp"
SEND_EMAIL = "attempt.send_email"
# Twilio's documentation (see docs/contacts.md) is checked before a BSUID is used as a To address.
TWILIO_ACCEPTS_BSUID_TO = False


async def lock(session: AsyncSession, n: Notification, attempt: Attempt | None = None) -> None:
    """Re-read and lock the rows a job is about to change (notification first, then attempt, always
    in that order): the send job, status callbacks and the fallback can touch them at once."""
    await session.refresh(n, with_for_update=True)
    if attempt is not None:
        await session.refresh(attempt, with_for_update=True)
    # Remember the status as locked, so the job can tell tenant apps what changed (publish_updates).
    session.info.setdefault("notification_status_at_lock", {}).setdefault(n.id, (n, n.status))


async def publish_updates(session: AsyncSession) -> None:
    """Emit notification.updated for every notification this unit of work moved to a new status."""
    from app.endpoints.events import emit, notification_data

    for n, before in session.info.pop("notification_status_at_lock", {}).values():
        if n.status != before:
            await emit(session, n.tenant_id, "notification.updated", notification_data(n))


def decide(session: AsyncSession, n: Notification, step: str, result: str, detail: str | None = None) -> None:
    """Record a routing step. Added to the session at commit, all in one INSERT: added at once, each
    would be flushed alone by the next query (five INSERTs per routed notification)."""
    pending: list[Decision] = session.sync_session.info.setdefault("pending_decisions", [])
    at = utcnow()
    if pending and at <= pending[-1].created_at:
        at = pending[-1].created_at + timedelta(microseconds=1)  # keep the order on a coarse clock
    pending.append(Decision(tenant_id=n.tenant_id, notification_id=n.id, step=step, result=result, detail=detail,
                            created_at=at))


@event.listens_for(Session, "before_commit")
def _add_decisions(session: Session) -> None:
    session.add_all(session.info.pop("pending_decisions", []))


@event.listens_for(Session, "after_rollback")
def _drop_decisions(session: Session) -> None:
    session.info.pop("pending_decisions", None)


def _ago(then: datetime, now: datetime) -> str:
    seconds = int((now - then).total_seconds())
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


async def template_content(session: AsyncSession, n: Notification) -> tuple[str | None, dict[str, Any]]:
    """(locale, content) for this notification's template; (None, {}) for free-form ones."""
    if not n.template_key:
        return None, {}
    template = await templates.content(session, n.tenant_id, n.template_key)
    if template is None:  # deleted after acceptance
        return None, {}
    locale = resolve_locale(template.locales, template.default_locale, n.recipient.get("locale"))
    return locale, template.locales.get(locale, {})


async def whatsapp_address(session: AsyncSession, n: Notification, idents: Any = None) -> tuple[str | None, str]:
    """(address, how): the phone wins when known; a BSUID only where Twilio takes it as To."""
    if idents is None:
        idents = await contacts.identifiers(session, n.tenant_id, n.contact_id)
    phone = n.recipient.get("phone") or contacts.current(idents, "phone")
    if phone:
        return phone, "phone"
    bsuid = n.recipient.get("whatsapp_user_id") or contacts.current(idents, "bsuid")
    if bsuid and TWILIO_ACCEPTS_BSUID_TO:
        return bsuid, "bsuid"
    return None, "bsuid only; Twilio does not take a BSUID as To" if bsuid else "no phone or WhatsApp user id"


class _Lookups:
    """What several routing steps read (credentials, identifiers), read once per job."""

    def __init__(self, session: AsyncSession, n: Notification) -> None:
        self.session, self.n = session, n
        self._twilio: Any = _UNREAD
        self._identifiers: Any = _UNREAD

    async def twilio(self) -> Any:
        if self._twilio is _UNREAD:
            self._twilio = await credentials.find_twilio(self.session, self.n.tenant_id)
        return self._twilio

    async def identifiers(self) -> Any:
        if self._identifiers is _UNREAD:
            self._identifiers = await contacts.identifiers(self.session, self.n.tenant_id, self.n.contact_id)
        return self._identifiers

    async def whatsapp_address(self) -> tuple[str | None, str]:
        return await whatsapp_address(self.session, self.n, await self.identifiers())


_UNREAD = object()


async def route(session: AsyncSession, n: Notification) -> None:
    await lock(session, n)
    if n.status != "accepted":
        return  # already routed: a re-delivered job changes nothing
    policy = await get_policy(session, n.tenant_id)
    locale, content = await template_content(session, n)
    lookups = _Lookups(session, n)
    blocked = await _whatsapp_blocker(lookups, policy, "whatsapp" in n.channels)
    if blocked is None:
        kind = await _whatsapp_kind(lookups, content)
        if kind is not None:
            await _start_whatsapp(lookups, policy, kind)
            return
        blocked = "window_closed"
    await fall_back(session, n, blocked, policy=policy, idents=await lookups.identifiers())


async def _whatsapp_blocker(lookups: _Lookups, policy: RoutingPolicyDoc, wanted: bool) -> str | None:
    session, n = lookups.session, lookups.n
    if not wanted:
        decide(session, n, "channels", "email_only", "the request asked for email only")
        return "not_requested"
    confirming_opt_out = n.purpose == "opt_out_confirmation"
    if confirming_opt_out:
        decide(session, n, "suppression", "bypassed", "confirming an opt-out the person just sent")
    elif await contacts.suppression(session, n.tenant_id, n.contact_id, "whatsapp"):
        decide(session, n, "suppression", "suppressed", "recipient opted out of WhatsApp")
        return "opted_out"
    else:
        decide(session, n, "suppression", "clear")
    creds = await lookups.twilio()
    if creds is None or creds.status != "valid":
        decide(session, n, "credentials", "missing" if creds is None else "invalid",
               None if creds is None else creds.status_reason)
        return "no_whatsapp_credentials"
    decide(session, n, "credentials", "ok")
    address, how = await lookups.whatsapp_address()
    if address is None:
        decide(session, n, "address", "none", how)
        return "no_whatsapp_address"
    decide(session, n, "address", how)
    if policy.require_whatsapp_opt_in and not confirming_opt_out:
        state = await contacts.consent_state(session, n.tenant_id, n.contact_id, "whatsapp")
        if state != "granted":
            decide(session, n, "consent", "missing" if state is None else state, "require_whatsapp_opt_in is set")
            return "no_consent"
        decide(session, n, "consent", "granted")
    else:
        decide(session, n, "consent", "not_required")
    return None


async def _whatsapp_kind(lookups: _Lookups, content: dict[str, Any]) -> str | None:
    """Session message inside the window, template outside it; None when nothing may go."""
    session, n = lookups.session, lookups.n
    creds = await lookups.twilio()
    sender = creds.whatsapp_from if creds and not creds.messaging_service_sid else None
    last = await contacts.last_inbound(session, n.tenant_id, n.contact_id, sender)
    now = utcnow()
    has_template = bool(content.get("whatsapp"))
    if last is not None and now - last < WINDOW:
        decide(session, n, "window", "open", f"last inbound {_ago(last, now)}")
        if n.media_url:
            return "media"
        if n.text:
            return "session"
        return "template" if has_template else None
    decide(session, n, "window", "closed", f"last inbound {_ago(last, now)}" if last else "no inbound message yet")
    if has_template:
        return "template"
    decide(session, n, "whatsapp", "skipped", "outside the window only a template may go, and none is set for this locale")
    return None


async def _start_whatsapp(lookups: _Lookups, policy: RoutingPolicyDoc, kind: str) -> None:
    session, n = lookups.session, lookups.n
    creds = await lookups.twilio()
    assert creds is not None
    address, _ = await lookups.whatsapp_address()
    service_sid = messaging_service_for(policy, region_of(address) if address and address.startswith("+") else None,
                                        creds.messaging_service_sid)
    sender = service_sid or creds.whatsapp_from
    if sender is None:
        decide(session, n, "sender", "none", "no Messaging Service and no whatsapp_from configured")
        await fall_back(session, n, "no_whatsapp_credentials", policy=policy, idents=await lookups.identifiers())
        return
    decide(session, n, "send", kind, f"via {'Messaging Service ' + service_sid if service_sid else sender}")
    attempt = Attempt(tenant_id=n.tenant_id, notification_id=n.id, channel="whatsapp", kind=kind,
                      provider="simulated" if n.environment == "test" else "twilio", sender=sender, status="pending")
    session.add(attempt)
    n.status, n.channel = "queued", "whatsapp"
    await session.flush()
    await outbox.enqueue(session, n.tenant_id, SEND_WHATSAPP, attempt.id)


async def fall_back(session: AsyncSession, n: Notification, reason: str, *, policy: RoutingPolicyDoc | None = None,
                    idents: Any = None) -> bool:
    """Email, exactly once, when the policy allows it for `reason` and an address is known."""
    policy = policy or await get_policy(session, n.tenant_id)
    allowed = reason == "not_requested" or reason in policy.fallback.email_on
    email = n.recipient.get("email")
    if not email:
        if idents is None:
            idents = await contacts.identifiers(session, n.tenant_id, n.contact_id)
        email = contacts.current(idents, "email")
    if "email" not in n.channels or not allowed or not email:
        why = ("email not requested" if "email" not in n.channels else
               f"'{reason}' is not in fallback.email_on" if not allowed else "no email address known")
        decide(session, n, "fallback", "none", why)
        _finish_without_channel(n, reason)
        return False
    email_contact = await contacts.find(session, n.tenant_id, _email_ident(email))
    if email_contact and await contacts.suppression(session, n.tenant_id, email_contact.id, "email"):
        decide(session, n, "fallback", "suppressed", "email address is suppressed")
        _finish_without_channel(n, "opted_out")
        return False
    attempt = Attempt(tenant_id=n.tenant_id, notification_id=n.id, channel="email", kind="email",
                      provider="simulated" if n.environment == "test" else "sendgrid", sender=None, status="pending")
    try:
        async with session.begin_nested():
            session.add(attempt)
            await session.flush()
    except IntegrityError:  # another path already fell back: exactly once
        return False
    decide(session, n, "fallback", "email", reason)
    metrics.FALLBACKS.labels(reason).inc()
    n.status, n.channel = "queued", "email"
    await outbox.enqueue(session, n.tenant_id, SEND_EMAIL, attempt.id)
    return True


def _email_ident(address: str):  # noqa: ANN202
    from tenants.contacts.identifiers import email

    return email(address)


FINAL = {"delivered", "read", "failed", "suppressed"}


def set_status(n: Notification, status: str) -> None:
    """Every notification status change goes through here, so the outcome is counted once."""
    if status != n.status and n.status not in FINAL and status in FINAL:
        metrics.NOTIFICATIONS.labels(str(n.tenant_id), n.channel or "none", status).inc()
    n.status = status


def _finish_without_channel(n: Notification, reason: str) -> None:
    if n.channel is None or n.status in ("accepted",):
        set_status(n, "suppressed" if reason == "opted_out" else "failed")
    elif n.channel == "whatsapp":
        set_status(n, "failed")


def sync_status(n: Notification, attempt: Attempt) -> None:
    """The notification follows the attempt on the channel that finally carries it."""
    if n.channel == attempt.channel:
        set_status(n, notification_status(attempt.status))


async def whatsapp_failed(session: AsyncSession, n: Notification, attempt: Attempt, failure: FailureClass,
                          code: str | None, message: str | None) -> None:
    """Step 6 for a definitive WhatsApp failure, at send time or from a status callback."""
    attempt.status = "failed" if attempt.status not in ("failed", "undelivered") else attempt.status
    attempt.error_class, attempt.error_code, attempt.error_message = failure.value, code, (message or "")[:2000]
    decide(session, n, "outcome", failure.value, f"Twilio {code}: {message}" if code else message)
    if failure is FailureClass.OPTED_OUT:
        contact = await contacts.ContactRepository(session, n.tenant_id).get(n.contact_id)
        await contacts.suppress(session, n.tenant_id, contact, channel="whatsapp", reason="opted_out",
                                source="provider", evidence=attempt.provider_message_id or code,
                                actor=SystemActor("twilio_21610"))
    if failure is FailureClass.BAD_CREDENTIALS:
        await credentials.mark_twilio_invalid(session, n.tenant_id, message or "Twilio rejected the credentials",
                                              actor=SystemActor("twilio_20003"))
    reason = {FailureClass.WINDOW_CLOSED: "window_closed", FailureClass.OPTED_OUT: "opted_out",
              FailureClass.BAD_CREDENTIALS: "no_whatsapp_credentials",
              FailureClass.INVALID_RECIPIENT: "invalid_recipient"}.get(failure, "failed")
    policy = await get_policy(session, n.tenant_id)
    if reason not in policy.fallback.email_on and reason != "failed":
        reason = "failed"  # every definitive failure is at least a 'failed'
    await fall_back(session, n, reason, policy=policy)
    if n.channel == "whatsapp":
        set_status(n, "failed")


async def load_attempt(session: AsyncSession, attempt_id: uuid.UUID) -> tuple[Notification, Attempt] | None:
    """The one unscoped lookup a job makes (it carries only the id), with both rows locked."""
    row = (await session.execute(
        select(Attempt, Notification).join(Notification, Notification.id == Attempt.notification_id)
        .where(Attempt.id == attempt_id)
    )).one_or_none()
    if row is None:
        return None
    attempt, n = row
    await lock(session, n, attempt)
    return n, attempt
