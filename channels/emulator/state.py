"""The emulator's in-memory world: accounts, templates, messages, windows, mail, and its clock.

One `EmulatorState` lives behind one router/app. Everything runs on one asyncio loop, so plain
dicts are enough; the only cross-thread readers are tests that look at `pending` or the config.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import string
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

log = logging.getLogger("notifygw.emulator")

WINDOW_SECONDS = 24 * 3600
API_VERSION = "2010-04-01"


def sid(prefix: str) -> str:
    """A Twilio-shaped SID: two letters and 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def _alnum(length: int) -> str:
    """Twilio API key secrets are 32 letters and digits."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


def rfc2822(ts: float | None) -> str | None:
    """Twilio's date format: "Thu, 24 Aug 2023 05:01:45 +0000"."""
    if ts is None:
        return None
    return _rfc2822(int(ts))


@lru_cache(maxsize=256)  # every message created or read within the same second shares its dates
def _rfc2822(seconds: int) -> str:
    return format_datetime(datetime.fromtimestamp(seconds, tz=UTC))


@dataclass
class Account:
    sid: str
    auth_token: str
    api_key_sid: str
    api_key_secret: str
    whatsapp_from: str  # "whatsapp:+1415523xxxx"
    messaging_service_sid: str
    channel_install_sid: str
    friendly_name: str
    date_created: float
    inbound_url: str | None = None


# The WhatsApp approval statuses the Content API reports (twilio_content_v1.json, Twilio's docs).
APPROVAL_STATUSES = ("approved", "pending", "received", "rejected", "unsubmitted", "paused", "disabled")
CATEGORIES = ("UTILITY", "MARKETING", "AUTHENTICATION", "TRANSACTIONAL")


@dataclass
class Template:
    content_sid: str
    account_sid: str
    variables: list[str]
    body: str
    # What GET /v1/ContentAndApprovals reports; the control API changes them (PATCH /_emulator/twilio/templates/...).
    approval: str = "approved"
    category: str = "UTILITY"
    language: str = "en"
    friendly_name: str = ""
    rejection_reason: str = ""
    date_created: float = 0.0
    date_updated: float = 0.0

    def content_and_approvals(self) -> dict[str, Any]:
        """The item as ContentAndApprovals lists it (the spec's readResults example)."""
        return {
            "date_created": _iso(self.date_created),
            "date_updated": _iso(self.date_updated),
            "sid": self.content_sid,
            "account_sid": self.account_sid,
            "friendly_name": self.friendly_name or self.content_sid,
            "language": self.language,
            "variables": {v: f"sample_{v}" for v in self.variables},
            "types": {"twilio/text": {"body": self.body}},
            "approval_requests": {
                "name": (self.friendly_name or self.content_sid).lower().replace(" ", "_"),
                "category": self.category if self.approval != "unsubmitted" else "",
                "content_type": "twilio/text",
                "status": self.approval,
                "rejection_reason": self.rejection_reason,
                "allow_category_change": self.approval == "unsubmitted",
            },
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Delivery:
    """One webhook (status callback, inbound message, or event batch) and every attempt at it."""

    kind: str
    url: str
    params: list[tuple[str, str]] | None = None  # form fields (Twilio)
    body: str | None = None  # raw body (SendGrid)
    headers: dict[str, str] = field(default_factory=dict)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def response_status(self) -> int | None:
        return self.attempts[-1].get("status_code") if self.attempts else None

    def to_dict(self) -> dict[str, Any]:
        """The request as sent, every attempt, and the final answer (status and body, None if it never came)."""
        data: dict[str, Any] = {
            "kind": self.kind,
            "url": self.url,
            **self.meta,
            "headers": self.headers,
            "attempts": self.attempts,
            "response_status": self.response_status,
            "response_body": self.attempts[-1].get("body") if self.attempts else None,
        }
        if self.params is not None:
            data["params"] = [list(p) for p in self.params]
        if self.body is not None:
            data["body"] = self.body
        return data


@dataclass
class Message:
    sid: str
    account_sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    media_urls: list[str]
    direction: str
    status: str
    date_created: float
    date_updated: float
    date_sent: float | None = None
    error_code: int | None = None
    error_message: str | None = None
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None
    status_callback: str | None = None
    request: list[tuple[str, str]] = field(default_factory=list)
    outcome: str = "delivered"
    send_callbacks: bool = True  # False for the magic numbers whose callbacks are lost
    validity_period: int | None = None
    request_id: str | None = None  # the Twilio-Request-Id of the create that made it
    history: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[Delivery] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def resource(self) -> dict[str, Any]:
        """The Message JSON (schema `api.v2010.account.message`)."""
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent),
            "date_updated": rfc2822(self.date_updated),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(len(self.media_urls)),
            "num_segments": "0" if self.from_ is None else "1",
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {
                "media": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}/Media.json",
                "feedback": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}/Feedback.json",
            },
            "to": self.to,
            "uri": self.uri,
        }

    def record(self) -> dict[str, Any]:
        """What the control API shows: the resource plus the request, history and callbacks."""
        return {
            **self.resource(),
            "content_sid": self.content_sid,
            "content_variables": self.content_variables,
            "status_callback": self.status_callback,
            "media_urls": self.media_urls,
            "outcome": self.outcome,
            "validity_period": self.validity_period,
            "request_id": self.request_id,
            "request": [list(p) for p in self.request],
            "history": self.history,
            "callbacks": [c.to_dict() for c in self.callbacks],
        }


@dataclass
class SendgridKey:
    api_key: str
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    event_webhook_url: str | None = None

    @property
    def private_key_pem(self) -> str:
        """The event-signing private key as unencrypted PKCS#8 PEM: fake, emulator-only, for saving and restoring."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    @staticmethod
    def load_private_key(pem: str) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("not an EC private key")
        return key

    @property
    def public_key_b64(self) -> str:
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()


@dataclass
class Mail:
    message_id: str
    api_key: str
    request: dict[str, Any]
    date_created: float
    events: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        recipients = [
            a.get("email")
            for p in self.request.get("personalizations", [])
            for kind in ("to", "cc", "bcc")
            for a in (p.get(kind) or [])
        ]
        return {
            "message_id": self.message_id,
            "api_key": self.api_key,
            "date_created": int(self.date_created),
            "recipients": recipients,
            "request": self.request,
            "events": self.events,
            "deliveries": [d.to_dict() for d in self.deliveries],
        }


@dataclass
class SenderLimits:
    """What Meta and Twilio enforce on one WhatsApp sender (FACTS §6.1), when the control API sets it:
    `tier` distinct people it may open a business-initiated conversation with in a rolling 24 h (None: no
    limit), `mps` messages per second (None: not enforced). Past either, the message ends undelivered, 63018."""

    tier: int | None = None
    mps: float | None = None
    opened: dict[str, float] = field(default_factory=dict)  # user -> when the conversation was opened
    sent: list[float] = field(default_factory=list)  # creates accepted within the last second

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "mps": self.mps,
            "open_conversations": sum(1 for t in self.opened.values() if now - t < WINDOW_SECONDS),
        }


class EmulatorState:
    """All of the emulator's memory. `reset()` forgets the data and keeps the configuration."""

    def __init__(
        self,
        *,
        slow_response_seconds: float = 30.0,
        callback_delay_seconds: float = 0.0,
        webhook_connect_timeout: float = 5.0,
        webhook_read_timeout: float = 15.0,
        accept_bsuid_to: bool = True,
        response_latency_seconds: float = 0.0,
    ) -> None:
        # Configuration (tests shorten these). Defaults follow Twilio's: ct=5000 ms, rt=15000 ms.
        self.slow_response_seconds = slow_response_seconds
        self.callback_delay_seconds = callback_delay_seconds
        self.webhook_connect_timeout = webhook_connect_timeout
        self.webhook_read_timeout = webhook_read_timeout
        # Whether To=whatsapp:<BSUID> is accepted (Meta's API sends to BSUIDs; Twilio's support is unverified).
        self.accept_bsuid_to = accept_bsuid_to
        # Added to every Messages create before the 201 (the message already exists): fault tests kill workers mid-call.
        self.response_latency_seconds = response_latency_seconds
        self._tasks: set[asyncio.Task[Any]] = set()
        self.responses_held = 0  # creates still sleeping before their (slow) answer
        self._clear()

    def _clear(self) -> None:
        self.clock_offset = 0.0
        self.parent_account_sid = sid("AC")  # owner_account_sid of every subaccount
        self.accounts: dict[str, Account] = {}
        self.api_keys: dict[str, str] = {}  # SK sid -> account sid
        self.templates: dict[str, Template] = {}
        self.messages: dict[str, Message] = {}
        self.windows: dict[tuple[str, str], float] = {}  # (sender address, user id) -> last inbound time
        self.fault_counters: dict[tuple[str, ...], int] = {}
        self.sendgrid_keys: dict[str, SendgridKey] = {}
        self.mails: dict[str, Mail] = {}
        self.sender_limits: dict[str, SenderLimits] = {}  # sender address -> its tier and MPS, when set
        self._sender_seq = 0

    def reset(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()
        self._clear()

    # clock
    def now(self) -> float:
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> None:
        self.clock_offset += seconds

    # background work
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("emulator background task failed", exc_info=task.exception())

    @property
    def pending(self) -> int:
        return len(self._tasks) + self.responses_held

    # accounts
    def create_account(
        self,
        *,
        friendly_name: str | None = None,
        inbound_url: str | None = None,
        account_sid: str | None = None,
        auth_token: str | None = None,
        api_key_sid: str | None = None,
        api_key_secret: str | None = None,
        whatsapp_from: str | None = None,
        messaging_service_sid: str | None = None,
    ) -> Account:
        """A new subaccount; random credentials unless given (`notifygw dev` restores a saved one)."""
        if account_sid is not None and account_sid in self.accounts:
            raise ValueError(f"account {account_sid} exists")
        if api_key_sid is not None and api_key_sid in self.api_keys:
            raise ValueError(f"API key {api_key_sid} exists")
        if whatsapp_from is not None:
            whatsapp_from = whatsapp_from if whatsapp_from.startswith("whatsapp:") else "whatsapp:" + whatsapp_from
            if whatsapp_from in {a.whatsapp_from for a in self.accounts.values()}:
                raise ValueError(f"sender {whatsapp_from} belongs to another account")
        else:
            self._sender_seq += 1
            while True:
                # "whatsapp:+1415523xxxx", unique per account (the Sandbox number is +14155238886: skip it).
                number = f"+1415523{(self._sender_seq + 1000) % 10000:04d}"
                taken = {a.whatsapp_from for a in self.accounts.values()}
                if number != "+14155238886" and "whatsapp:" + number not in taken:
                    break
                self._sender_seq += 1
            whatsapp_from = "whatsapp:" + number
        account = Account(
            sid=account_sid or sid("AC"),
            auth_token=auth_token or secrets.token_hex(16),
            api_key_sid=api_key_sid or sid("SK"),
            api_key_secret=api_key_secret or _alnum(32),
            whatsapp_from=whatsapp_from,
            messaging_service_sid=messaging_service_sid or sid("MG"),
            channel_install_sid=sid("XE"),
            friendly_name=friendly_name or f"notifygw emulator subaccount {len(self.accounts) + 1}",
            date_created=self.now(),
            inbound_url=inbound_url,
        )
        self.accounts[account.sid] = account
        self.api_keys[account.api_key_sid] = account.sid
        return account

    def create_template(
        self,
        account_sid: str,
        variables: list[str],
        *,
        body: str | None = None,
        content_sid: str | None = None,
        approval: str = "approved",
        category: str = "UTILITY",
        language: str = "en",
        friendly_name: str | None = None,
    ) -> Template:
        """A Content template (what POST /_emulator/twilio/templates makes), approved unless told otherwise,
        optionally with a given sid."""
        if account_sid not in self.accounts:
            raise KeyError(f"no account {account_sid}")
        content_sid = content_sid or sid("HX")
        if content_sid in self.templates:
            raise ValueError(f"template {content_sid} exists")
        body = body or ("Emulated template " + " ".join("{{" + v + "}}" for v in variables)).strip()
        now = self.now()
        template = Template(
            content_sid,
            account_sid,
            list(variables),
            body,
            approval=approval,
            category=category,
            language=language,
            friendly_name=friendly_name or "",
            date_created=now,
            date_updated=now,
        )
        self.templates[content_sid] = template
        return template

    def account_for_service(self, messaging_service_sid: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.messaging_service_sid == messaging_service_sid), None)

    # the 24-hour customer-service window
    def open_window(self, sender: str, user: str) -> None:
        self.windows[(sender, user)] = self.now()

    def window_open(self, sender: str, user: str) -> bool:
        opened = self.windows.get((sender, user))
        return opened is not None and self.now() - opened < WINDOW_SECONDS

    # messaging limits (tiers) and throughput per sender
    def admit(self, sender: str, user: str, business_initiated: bool) -> bool:
        """False when this message gets 63018: a burst over the sender's MPS, or a business-initiated one to a
        person outside the sender's 24 h set once the set holds `tier` people. A person already in the set
        does not count again."""
        limits = self.sender_limits.get(sender)
        if limits is None:
            return True
        now = self.now()
        if limits.mps is not None:
            # Below one message a second the sender takes one message per 1/mps seconds.
            window = max(1.0, 1.0 / limits.mps)
            limits.sent = [t for t in limits.sent if now - t < window]
            if len(limits.sent) >= max(1.0, limits.mps * window):
                return False
        if business_initiated and limits.tier is not None:
            limits.opened = {u: t for u, t in limits.opened.items() if now - t < WINDOW_SECONDS}
            if user not in limits.opened:
                if len(limits.opened) >= limits.tier:
                    return False
                limits.opened[user] = now
        if limits.mps is not None:
            limits.sent.append(now)
        return True

    # SendGrid
    def create_sendgrid_key(
        self,
        event_webhook_url: str | None = None,
        *,
        api_key: str | None = None,
        private_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> SendgridKey:
        """A new API key with its own event-signing P-256 key pair; random unless given (to restore a saved key)."""
        api_key = api_key or f"SG.{secrets.token_urlsafe(16)}.{secrets.token_urlsafe(32)}"
        if api_key in self.sendgrid_keys:
            raise ValueError("this SendGrid key exists")
        if private_key is not None and not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("SendGrid signs events with a P-256 (secp256r1) key")
        key = SendgridKey(
            api_key=api_key,
            private_key=private_key or ec.generate_private_key(ec.SECP256R1()),
            event_webhook_url=event_webhook_url,
        )
        self.sendgrid_keys[api_key] = key
        return key
