"""The routing decision, in the documented order, with every step recorded as data.

1 suppression, 2 credentials (and an address to send to), 3 the recipient's country rule (blocked?)
and consent (required by the tenant or the country), 4 the 24h window (and the template's approval),
then for a template its consent's age (outside the window) and quiet hours (MARKETING), 5 WhatsApp
through the Messaging Service for the recipient's country, 6 react to the outcome, 7 email. Every step
name and result is listed in docs/routing.md. Functions here take a session and flush; the actor that
calls them commits.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utcnow
from app.core.uow import unit_of
from app.metrics import registry as metrics
from app.notify import sensitive
from app.notify.kinds import ROUTE
from app.notify.models import Attempt, Decision, Notification
from app.notify.status import notification_status
from app.outbox import service as outbox
from channels.base import FailureClass
from channels.errors import twilio_more_info
from channels.phone import region_of, time_zones_of
from tenants.accounts.models import Tenant
from tenants.audit.service import SystemActor
from tenants.contacts import service as contacts
from tenants.contacts.models import ConsentEntry
from tenants.contacts.repository import ContactRepository
from tenants.contacts.service import WINDOW
from tenants.credentials import service as credentials
from tenants.routing import rules
from tenants.routing.schemas import CountryRule, RoutingPolicyDoc
from tenants.routing.service import get_policy, messaging_service_for
from tenants.templates import approvals
from tenants.templates import service as templates
from tenants.templates.rendering import resolve_locale

SEND_WHATSAPP = "attempt.send_whatsapp"
SEND_EMAIL = "attempt.send_email"
TEMPLATE_UNAPPROVED = "template_unapproved"  # the fallback reason for a WhatsApp template that may not be sent
COUNTRY_BLOCKED = "country_blocked"  # the fallback reason for a recipient whose country the policy blocks
# Reasons added after policies were first stored: a stored `email_on` list may not name them (_listed_or_failed).
LATER_REASONS = frozenset({TEMPLATE_UNAPPROVED, COUNTRY_BLOCKED})
# Twilio's documentation (see docs/contacts.md) is checked before a BSUID is used as a To address.
TWILIO_ACCEPTS_BSUID_TO = False


async def lock(session: AsyncSession, n: Notification, attempt: Attempt | None = None) -> None:
    """Re-read and lock the rows a job is about to change (notification first, then attempt, always
    in that order): the send job, status callbacks and the fallback can touch them at once."""
    if attempt is None:
        await session.refresh(n, with_for_update=True)
    else:
        (await session.execute(_LOCK_BOTH, {"n": n.id, "a": attempt.id})).one()
    remember_locked(session, n)


# One statement, built once: FOR UPDATE OF takes the locks in the order it names them.
_LOCK_BOTH = (
    select(Notification, Attempt)
    .where(Notification.id == bindparam("n"), Attempt.id == bindparam("a"), Attempt.notification_id == Notification.id)
    .with_for_update(of=[Notification, Attempt])
    .execution_options(populate_existing=True)
)


def remember_locked(session: AsyncSession, n: Notification) -> None:
    """Remember the status as locked, so the job can tell tenant apps what changed (publish_updates).
    Called by `lock`, and by a job's loader that read the rows with their locks in one statement."""
    session.info.setdefault("notification_status_at_lock", {}).setdefault(n.id, (n, n.status))


async def publish_updates(session: AsyncSession) -> None:
    """Emit notification.updated for every notification this unit of work moved to a new status."""
    from app.endpoints.events import emit, notification_data

    for n, before in session.info.pop("notification_status_at_lock", {}).values():
        if n.status != before:
            await emit(session, n.tenant_id, "notification.updated", notification_data(n))


def decide(session: AsyncSession, n: Notification, step: str, result: str, detail: str | None = None) -> None:
    """Record a routing step. Added to the session at commit, all in one INSERT (the unit of work's
    rows): added at once, each would be flushed alone by the next query (five INSERTs per routed
    notification)."""
    unit = unit_of(session)
    last = next((row for row in reversed(unit.rows) if isinstance(row, Decision)), None)
    at = utcnow()
    if last is not None and at <= last.created_at:
        at = last.created_at + timedelta(microseconds=1)  # keep the order on a coarse clock
    unit.add_at_commit(
        Decision(tenant_id=n.tenant_id, notification_id=n.id, step=step, result=result, detail=detail, created_at=at)
    )


def policy_clock() -> datetime:
    """The time the consent-age and quiet-hours steps judge by (a test may fix it)."""
    return utcnow()


def _ago(then: datetime, now: datetime) -> str:
    seconds = int((now - then).total_seconds())
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


async def template_content(session: AsyncSession, n: Notification) -> tuple[str | None, dict[str, Any]]:
    """(locale, content) for this notification's template; (None, {}) for free-form ones. The WhatsApp part
    carries what Twilio last said of its ContentSid under "approval" (read with the template: no query of its own)."""
    if not n.template_key:
        return None, {}
    template = await templates.content(session, n.tenant_id, n.template_key)
    if template is None:  # deleted after acceptance
        return None, {}
    locale = resolve_locale(template.locales, template.default_locale, n.recipient.get("locale"))
    content = template.locales.get(locale, {})
    whatsapp = content.get("whatsapp")
    if whatsapp:  # a copy: the cached locales are shared
        approval = approvals.of(template.approvals, whatsapp["content_sid"])
        content = {**content, "whatsapp": {**whatsapp, "approval": approval}}
    return locale, content


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
        # Set by the steps as they go: what the later ones judge.
        self.address: str | None = None
        self.rule: CountryRule | None = None  # the policy's rule for the recipient's country
        self.consent: ConsentEntry | None = None  # the granted consent, when one was required
        self.window_open = False

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


@dataclass(frozen=True)
class Started:
    """A WhatsApp attempt that routing just created (pending, not yet flushed), with what routing read for it:
    the send in the same job uses them instead of reading them again."""

    attempt: Attempt
    twilio: Any  # the tenant's Twilio credentials row
    address: str | None  # where it goes, as routing found it


async def route(session: AsyncSession, n: Notification, *, locked: bool = False) -> bool:
    """Route an accepted notification, and queue the WhatsApp send it starts as a job of its own. False
    when it is held for later (quiet hours): its route job is rescheduled to then, and must not be marked
    done. The held job routes it again from the start. `locked`: the caller read the notification with
    its lock in this transaction."""
    finished, started = await route_to_send(session, n, locked=locked)
    if started is not None:
        await outbox.enqueue(session, n.tenant_id, SEND_WHATSAPP, started.attempt.id)
    return finished


async def route_to_send(session: AsyncSession, n: Notification, *, locked: bool = False) -> tuple[bool, Started | None]:
    """`route`, leaving the WhatsApp attempt it starts to the caller to send or queue: (finished, the
    attempt started or None). The route job sends it in the same run (app/notify/tasks.py)."""
    if not locked:
        await lock(session, n)
    if n.status != "accepted":
        return True, None  # already routed: a re-delivered job changes nothing
    policy = await get_policy(session, n.tenant_id)
    locale, content = await template_content(session, n)
    if locale is not None:
        requested = n.recipient.get("locale")
        decide(
            session, n, "locale", locale[:32], f"requested {requested}" if requested else "none requested: the default"
        )
    lookups = _Lookups(session, n)
    blocked = await _whatsapp_blocker(lookups, policy, "whatsapp" in n.channels)
    if blocked is None:
        kind, blocked = await _whatsapp_kind(lookups, content)
        if kind is not None:
            stale = _consent_age(lookups, policy, kind, content)
            if stale is None:
                if await _held_for_quiet_hours(lookups, kind, content):
                    return False, None
                return True, await _start_whatsapp(lookups, policy, kind)
            blocked = stale
    await fall_back(session, n, _listed_or_failed(policy, blocked), policy=policy, idents=await lookups.identifiers())
    return True, None


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
        decide(
            session,
            n,
            "credentials",
            "missing" if creds is None else "invalid",
            None if creds is None else creds.status_reason,
        )
        return "no_whatsapp_credentials"
    decide(session, n, "credentials", "ok")
    address, how = await lookups.whatsapp_address()
    if address is None:
        decide(session, n, "address", "none", how)
        return "no_whatsapp_address"
    decide(session, n, "address", how)
    lookups.address = address
    if policy.countries:  # step 3: the recipient's country rule, when the policy has any
        country = region_of(address) if address.startswith("+") else None
        lookups.rule = rule = rules.country_rule(policy, country)
        if country is None:
            decide(session, n, "country", "unknown", "the number belongs to no one country: no country rule applies")
        elif rule is None:
            decide(session, n, "country", "no_rule", country)
        elif rule.blocked:
            decide(session, n, "country", "blocked", f"WhatsApp to {country} is blocked by the routing policy")
            return COUNTRY_BLOCKED
        else:
            decide(session, n, "country", "rule", _rule_text(rule))
    required, why = rules.opt_in_required(policy, lookups.rule)
    if required and not confirming_opt_out:
        entry = await contacts.latest_consent(session, n.tenant_id, n.contact_id, "whatsapp")
        state = entry.status if entry else None
        if entry is None or state != "granted":
            decide(session, n, "consent", "missing" if state is None else state, why)
            return "no_consent"
        lookups.consent = entry
        decide(session, n, "consent", "granted", why if lookups.rule is not None else None)
    else:
        not_required = "confirming an opt-out" if required else why or None
        decide(session, n, "consent", "not_required", not_required)
    return None


def _rule_text(rule: CountryRule) -> str:
    parts = [rule.country]
    if rule.require_whatsapp_opt_in is not None:
        parts.append("opt-in required" if rule.require_whatsapp_opt_in else "opt-in not required")
    if rule.quiet_hours is not None:
        parts.append(f"quiet hours {rule.quiet_hours.start}-{rule.quiet_hours.end} for MARKETING templates")
    return "; ".join(parts)


def _consent_age(lookups: _Lookups, policy: RoutingPolicyDoc, kind: str, content: dict[str, Any]) -> str | None:
    """A business-initiated send (a template outside the 24 h window) needs a consent no older than the policy
    allows for the template's category: a stale one counts as none (`no_consent`). Judged only where consent
    was required (and found granted); no step when no limit applies."""
    entry = lookups.consent
    if kind != "template" or lookups.window_open or entry is None:
        return None
    category = rules.category_of(content)
    days, key = rules.max_consent_age(policy, category)
    if days is None:
        return None
    now = policy_clock()
    limit = (
        f"the {key} limit is {days} days"
        if key != "default"
        else f"the default limit ({category or 'no category'}) is {days} days"
    )
    detail = f"captured {_ago(entry.captured_at, now)}; {limit}"
    if now - entry.captured_at > timedelta(days=days):
        decide(lookups.session, lookups.n, "consent_age", "stale", detail)
        return "no_consent"
    decide(lookups.session, lookups.n, "consent_age", "fresh", detail)
    return None


async def _held_for_quiet_hours(lookups: _Lookups, kind: str, content: dict[str, Any]) -> bool:
    """A MARKETING template to a country with quiet hours waits until they end where the recipient is: the
    route job is rescheduled to then (True), with the time it will go in the decision."""
    rule, session, n = lookups.rule, lookups.session, lookups.n
    if kind != "template" or rule is None or rule.quiet_hours is None or lookups.address is None:
        return False
    if rules.category_of(content) != "MARKETING":
        return False
    hours, now = rule.quiet_hours, policy_clock()
    go_at, zones = rules.quiet_until(now, time_zones_of(lookups.address), hours)
    if not zones:
        decide(
            session,
            n,
            "quiet_hours",
            "unknown_time_zone",
            f"no time zone is known for the number: {rule.country}'s quiet hours are not applied",
        )
        return False
    span = f"quiet {hours.start}-{hours.end} in {_zones_text(zones)}"
    if go_at is None:
        decide(
            session, n, "quiet_hours", "clear", f"{now.astimezone(rules.zone(zones[0])):%H:%M} in {zones[0]}; {span}"
        )
        return False
    decide(session, n, "quiet_hours", "held", f"until {go_at:%Y-%m-%dT%H:%M:%SZ}; {span}")
    delay_ms = max(1, math.ceil((go_at - now).total_seconds() * 1000))
    await outbox.enqueue(session, n.tenant_id, ROUTE, n.id, delay_ms=delay_ms)
    return True


def _zones_text(zones: list[str]) -> str:
    if len(zones) <= 3:
        return ", ".join(zones)
    return f"{', '.join(zones[:3])} and {len(zones) - 3} more of the number's time zones"


def template_blocker(session: AsyncSession, n: Notification, content: dict[str, Any]) -> str | None:
    """Why this locale's WhatsApp template must not be sent (unapproved, paused, not in the Twilio account,
    its variables not Twilio's), recorded as a `template` decision; None when it may go."""
    whatsapp = content.get("whatsapp") or {}
    problem = approvals.unusable(whatsapp, whatsapp.get("approval") or approvals.UNVERIFIED)
    if problem is None:
        return None
    decide(session, n, "template", problem[0], problem[1])
    return TEMPLATE_UNAPPROVED


def _listed_or_failed(policy: RoutingPolicyDoc, reason: str) -> str:
    # A policy stored before a later reason existed does not list it: WhatsApp failed, at least.
    if reason in LATER_REASONS and reason not in policy.fallback.email_on:
        return "failed"
    return reason


async def template_withdrawn(session: AsyncSession, n: Notification, attempt: Attempt, result: str, why: str) -> None:
    """At send time the template may no longer be sent (paused or unapproved since routing): the attempt fails
    before any provider call, the decision says why, and the fallback follows as step 6."""
    attempt.status, attempt.error_class, attempt.error_message = "failed", FailureClass.TEMPLATE_INVALID.value, why
    decide(session, n, "template", result, why)
    policy = await get_policy(session, n.tenant_id)
    await fall_back(session, n, _listed_or_failed(policy, TEMPLATE_UNAPPROVED), policy=policy)
    if n.channel == "whatsapp":
        set_status(n, "failed")


async def _whatsapp_kind(lookups: _Lookups, content: dict[str, Any]) -> tuple[str | None, str]:
    """(kind, why not): a session message inside the window, the template outside it; (None, reason) when
    nothing may go: the window is closed with no template, or the template may not be sent."""
    session, n = lookups.session, lookups.n
    creds = await lookups.twilio()
    sender = creds.whatsapp_from if creds and not creds.messaging_service_sid else None
    last = await contacts.last_inbound(session, n.tenant_id, n.contact_id, sender)
    now = utcnow()
    has_template = bool(content.get("whatsapp"))
    if last is not None and now - last < WINDOW:
        lookups.window_open = True
        decide(session, n, "window", "open", f"last inbound {_ago(last, now)}")
        if n.media_url:
            return "media", ""
        if n.text:
            return "session", ""
        if not has_template:
            return None, "window_closed"
        blocked = template_blocker(session, n, content)
        return (None, blocked) if blocked else ("template", "")
    decide(session, n, "window", "closed", f"last inbound {_ago(last, now)}" if last else "no inbound message yet")
    if has_template:
        blocked = template_blocker(session, n, content)
        return (None, blocked) if blocked else ("template", "")
    decide(
        session, n, "whatsapp", "skipped", "outside the window only a template may go, and none is set for this locale"
    )
    return None, "window_closed"


async def _start_whatsapp(lookups: _Lookups, policy: RoutingPolicyDoc, kind: str) -> Started | None:
    session, n = lookups.session, lookups.n
    creds = await lookups.twilio()
    if creds is None:  # step 2 routes to WhatsApp only with credentials; a change since is a retry
        raise RuntimeError("the tenant's Twilio credentials went away while routing")
    address, _ = await lookups.whatsapp_address()
    service_sid = messaging_service_for(
        policy, region_of(address) if address and address.startswith("+") else None, creds.messaging_service_sid
    )
    sender = service_sid or creds.whatsapp_from
    if sender is None:
        decide(session, n, "sender", "none", "no Messaging Service and no whatsapp_from configured")
        await fall_back(session, n, "no_whatsapp_credentials", policy=policy, idents=await lookups.identifiers())
        return None
    decide(session, n, "send", kind, f"via {'Messaging Service ' + service_sid if service_sid else sender}")
    # Not flushed: the send in the same job inserts it once, already `sending`, instead of an INSERT and
    # an UPDATE. So every value used before the flush is set here, not left to the column defaults.
    attempt = Attempt(
        id=uuid.uuid4(),
        tenant_id=n.tenant_id,
        notification_id=n.id,
        channel="whatsapp",
        kind=kind,
        provider="simulated" if n.environment == "test" else "twilio",
        sender=sender,
        status="pending",
        tries=0,
        checks=0,
        possible_duplicate=False,
    )
    session.add(attempt)
    n.status, n.channel = "queued", "whatsapp"
    return Started(attempt, creds, address)


async def fall_back(
    session: AsyncSession, n: Notification, reason: str, *, policy: RoutingPolicyDoc | None = None, idents: Any = None
) -> bool:
    """Email, exactly once, when the policy allows it for `reason` and an address is known."""
    policy = policy or await get_policy(session, n.tenant_id)
    allowed = reason == "not_requested" or reason in policy.fallback.email_on
    email = n.recipient.get("email")
    if not email:
        if idents is None:
            idents = await contacts.identifiers(session, n.tenant_id, n.contact_id)
        email = contacts.current(idents, "email")
    if "email" not in n.channels or not allowed or not email:
        why = (
            "email not requested"
            if "email" not in n.channels
            else f"'{reason}' is not in fallback.email_on"
            if not allowed
            else "no email address known"
        )
        decide(session, n, "fallback", "none", why)
        _finish_without_channel(n, reason)
        return False
    email_contact = await contacts.find(session, n.tenant_id, _email_ident(email))
    if email_contact and await contacts.suppression(session, n.tenant_id, email_contact.id, "email"):
        decide(session, n, "fallback", "suppressed", "email address is suppressed")
        _finish_without_channel(n, "opted_out")
        return False
    attempt = Attempt(
        tenant_id=n.tenant_id,
        notification_id=n.id,
        channel="email",
        kind="email",
        provider="simulated" if n.environment == "test" else "sendgrid",
        sender=None,
        status="pending",
    )
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


def _email_ident(address: str) -> Any:
    from tenants.contacts.identifiers import email

    return email(address)


FINAL = {"delivered", "read", "failed", "suppressed"}


def set_status(n: Notification, status: str) -> None:
    """Every notification status change goes through here, so the outcome is counted once, and the
    sensitive variables are dropped once it is final (app/notify/sensitive.py)."""
    if status != n.status and n.status not in FINAL and status in FINAL:
        metrics.NOTIFICATIONS.labels(str(n.tenant_id), n.channel or "none", status).inc()
    n.status = status
    if status in FINAL:
        sensitive.drop(n)  # nothing is sent for a final notification: its sensitive values go now


def _finish_without_channel(n: Notification, reason: str) -> None:
    if n.channel is None or n.status in ("accepted",):
        set_status(n, "suppressed" if reason == "opted_out" else "failed")
    elif n.channel == "whatsapp":
        set_status(n, "failed")


def sync_status(n: Notification, attempt: Attempt) -> None:
    """The notification follows the attempt on the channel that finally carries it."""
    if n.channel == attempt.channel:
        set_status(n, notification_status(attempt.status))


async def whatsapp_failed(
    session: AsyncSession,
    n: Notification,
    attempt: Attempt,
    failure: FailureClass,
    code: str | None,
    message: str | None,
    *,
    more_info: str | None = None,
) -> None:
    """Step 6 for a definitive WhatsApp failure, at send time or from a status callback. `more_info` is
    Twilio's own (a REST error's); a callback carries only the code, whose documentation URL stands for it."""
    attempt.status = "failed" if attempt.status not in ("failed", "undelivered") else attempt.status
    attempt.error_class, attempt.error_code, attempt.error_message = failure.value, code, (message or "")[:2000]
    attempt.error_more_info = more_info or twilio_more_info(code)
    decide(session, n, "outcome", failure.value, f"Twilio {code}: {message}" if code else message)
    if failure is FailureClass.OPTED_OUT:
        contact = await ContactRepository(session, n.tenant_id).get(n.contact_id)
        await contacts.suppress(
            session,
            n.tenant_id,
            contact,
            channel="whatsapp",
            reason="opted_out",
            source="provider",
            evidence=attempt.provider_message_id or code,
            actor=SystemActor("twilio_21610"),
        )
    if failure is FailureClass.BAD_CREDENTIALS:
        await credentials.mark_twilio_invalid(
            session, n.tenant_id, message or "Twilio rejected the credentials", actor=SystemActor("twilio_20003")
        )
    reason = {
        FailureClass.WINDOW_CLOSED: "window_closed",
        FailureClass.OPTED_OUT: "opted_out",
        FailureClass.BAD_CREDENTIALS: "no_whatsapp_credentials",
        FailureClass.INVALID_RECIPIENT: "invalid_recipient",
    }.get(failure, "failed")
    policy = await get_policy(session, n.tenant_id)
    if reason not in policy.fallback.email_on and reason != "failed":
        reason = "failed"  # every definitive failure is at least a 'failed'
    await fall_back(session, n, reason, policy=policy)
    if n.channel == "whatsapp":
        set_status(n, "failed")


async def load_attempt(session: AsyncSession, attempt_id: uuid.UUID) -> tuple[Notification, Attempt] | None:
    """The one unscoped lookup a job makes (it carries only the id), with both rows locked."""
    found = await load_job(session, attempt_id)
    return None if found is None else found[:2]


async def load_job(session: AsyncSession, attempt_id: uuid.UUID) -> tuple[Notification, Attempt, str] | None:
    """(notification, attempt, the tenant's status), read in one query, with both rows locked."""
    row = (
        await session.execute(
            select(Attempt, Notification, Tenant.status)
            .join(Notification, Notification.id == Attempt.notification_id)
            .join(Tenant, Tenant.id == Notification.tenant_id)
            .where(Attempt.id == attempt_id)
        )
    ).one_or_none()
    if row is None:
        return None
    attempt, n, tenant_status = row
    await lock(session, n, attempt)
    return n, attempt, tenant_status


async def while_suspended(session: AsyncSession, n: Notification, attempt: Attempt | None = None) -> bool:
    """A suspended tenant sends nothing. True: hold the job until reactivation. False: the work is
    finished instead, because an opt-out confirmation held back now must not go out later."""
    await lock(session, n, attempt)
    if n.purpose != "opt_out_confirmation":
        decide(session, n, "tenant", "suspended", "held until the tenant is reactivated")
        return True
    if attempt is not None:
        attempt.status, attempt.error_class = "failed", "tenant_suspended"
    decide(
        session,
        n,
        "tenant",
        "suspended",
        "the opt-out confirmation is not sent: the tenant was suspended when it was due (the opt-out stands)",
    )
    set_status(n, "suppressed")
    return False
