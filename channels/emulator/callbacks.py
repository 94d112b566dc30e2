"""Outgoing webhooks: Twilio status callbacks and inbound messages, SendGrid event batches.

Every webhook is a `Delivery` recorded on its message or mail, with every attempt's status or error.
A target that is down, slow or broken is recorded and never crashes the emulator.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import re
import secrets
import time
from collections.abc import Iterable
from functools import lru_cache
from hashlib import sha1
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlsplit, urlunsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from channels.emulator.errors import CALLBACK_ERRORS
from channels.emulator.state import Account, Delivery, EmulatorState, Message, SendgridKey
from channels.emulator.webhook_client import WebhookClient, client_for_loop

# The status sequence behind each outcome: (MessageStatus, ErrorCode).
OUTCOMES: dict[str, list[tuple[str, int | None]]] = {
    "delivered": [("queued", None), ("sent", None), ("delivered", None), ("read", None)],
    "failed_63016": [("queued", None), ("failed", 63016)],
    "failed_63024": [("queued", None), ("failed", 63024)],
    "failed_63028": [("queued", None), ("failed", 63028)],
    "undelivered_30003": [("queued", None), ("sent", None), ("undelivered", 30003)],
    # Past the sender's messaging-limit tier, or over its MPS (FACTS §6.1): Twilio's code is the same.
    "undelivered_63018": [("queued", None), ("undelivered", 63018)],
    # Magic +15005550008: read before delivered, each twice (each duplicate has its own idempotency token).
    "shuffled": [
        ("queued", None),
        ("sent", None),
        ("read", None),
        ("read", None),
        ("delivered", None),
        ("delivered", None),
    ],
}
_RANK = {"accepted": 0, "queued": 1, "sending": 2, "sent": 3, "delivered": 4, "read": 5, "failed": 9, "undelivered": 9}
_EVENT_TYPE = {"delivered": "DELIVERED", "read": "READ"}


@lru_cache(maxsize=1024)
def _keyed_hmac(auth_token: str) -> hmac.HMAC:
    """The HMAC-SHA1 state after the key: copied per signature instead of hashing the key again."""
    return hmac.new(auth_token.encode(), digestmod=sha1)


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """X-Twilio-Signature over the full URL (query string included): the official validator's algorithm
    (FACTS §1.1: URL, then each name and value sorted by name then value, duplicates once), which
    tests/channels/test_signatures.py pins to the official vectors."""
    mac = _keyed_hmac(auth_token).copy()
    mac.update((url + "".join(name + value for name, value in sorted(set(params)))).encode())
    return base64.b64encode(mac.digest()).decode()


def sendgrid_signature(private_key: ec.EllipticCurvePrivateKey, timestamp: str, payload: str) -> str:
    """X-Twilio-Email-Event-Webhook-Signature: base64 DER ECDSA P-256/SHA-256 over timestamp + raw body."""
    return base64.b64encode(private_key.sign((timestamp + payload).encode(), ec.ECDSA(hashes.SHA256()))).decode()


def split_overrides(url: str) -> tuple[str, dict[str, str]]:
    """Twilio connection overrides live in the fragment (#rc=2&ct=1000); the fragment is never sent."""
    if "#" not in url:
        return url, {}
    parts = urlsplit(url)
    overrides = dict(parse_qsl(parts.fragment)) if parts.fragment else {}
    return urlunsplit(parts._replace(fragment="")), overrides


def _override_ms(overrides: dict[str, str], key: str, default_s: float, low: int, high: int) -> float:
    raw = overrides.get(key)
    if raw is None:
        return default_s
    try:
        return min(max(int(raw), low), high) / 1000
    except ValueError:
        return default_s


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch


@lru_cache(maxsize=8192)
def _quote_plus(text: str) -> str:
    return quote_plus(text)


def form_encode(params: Iterable[tuple[str, str]]) -> str:
    """`urlencode(params)`, byte for byte, without quoting what needs none (names, statuses, SIDs) and with
    the rest cached: a message's four callbacks repeat most of their values."""
    return "&".join(
        (name if _UNRESERVED(name) else _quote_plus(name)) + "=" + (value if _UNRESERVED(value) else _quote_plus(value))
        for name, value in params
    )


async def _post(
    client: WebhookClient, state: EmulatorState, delivery: Delivery, content: bytes, overrides: dict[str, str]
) -> None:
    """POST with Twilio's default policy: retry once (rc=1) on a connection failure or a 5xx, same token."""
    try:
        retries = min(max(int(overrides.get("rc", "1")), 0), 5)
    except ValueError:
        retries = 1
    connect = _override_ms(overrides, "ct", state.webhook_connect_timeout, 100, 10000)
    read = _override_ms(overrides, "rt", state.webhook_read_timeout, 100, 15000)
    for attempt in range(1 + retries):
        started = time.monotonic()
        record: dict[str, Any] = {"attempt": attempt + 1, "at": int(state.now())}
        try:
            answer = await client.post(
                delivery.url, content, delivery.headers, connect_timeout=connect, read_timeout=read
            )
        except Exception as exc:  # connection refused, timeout, bad URL: recorded, never raised
            record.update(status_code=None, error=f"{type(exc).__name__}: {exc}")
            delivery.attempts.append(record)
            continue
        record.update(
            status_code=answer.status_code,
            body=answer.body[:16384].decode("utf-8", "replace")[:4096],
            content_type=answer.content_type,
            elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        )
        delivery.attempts.append(record)
        if answer.status_code < 500:
            return


async def deliver_twilio(client: WebhookClient, state: EmulatorState, delivery: Delivery, auth_token: str) -> None:
    """Sign and POST a form-encoded Twilio webhook. `delivery.url` may carry connection overrides."""
    if delivery.params is None:
        raise ValueError("a Twilio webhook delivery carries form params")
    url, overrides = split_overrides(delivery.url)
    delivery.url = url
    delivery.meta["overrides"] = overrides
    delivery.headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "TwilioProxy/1.1",
        "X-Home-Region": "us1",
        "X-Twilio-Signature": twilio_signature(auth_token, url, delivery.params),
        "I-Twilio-Idempotency-Token": secrets.token_hex(8) + "-" + secrets.token_hex(12),
    }
    await _post(client, state, delivery, form_encode(delivery.params).encode(), overrides)


def _apply(state: EmulatorState, message: Message, account: Account, status: str, code: int | None) -> None:
    now = state.now()
    message.history.append({"status": status, "error_code": code, "at": int(now)})
    if message.from_ is None:
        message.from_ = account.whatsapp_from  # a Messaging Service picks its sender once queued
    if code is not None:
        message.error_code, message.error_message = code, CALLBACK_ERRORS.get(code, "Error")
    if status == "sent" and message.date_sent is None:
        message.date_sent = now
    if _RANK.get(status, 0) > _RANK.get(message.status, 0) and _RANK.get(message.status, 0) < 9:
        message.status = status
    message.date_updated = now


def status_params(message: Message, account: Account, status: str, code: int | None, seq: int) -> list[tuple[str, str]]:
    """The WhatsApp status callback fields of FACTS §4.1, plus fields a receiver does not know (it must ignore them)."""
    params = [
        ("AccountSid", message.account_sid),
        ("ApiVersion", "2010-04-01"),
        ("ChannelInstallSid", account.channel_install_sid),
        ("ChannelPrefix", "whatsapp"),
        ("ChannelToAddress", message.to.removeprefix("whatsapp:")),
        ("From", message.from_ or account.whatsapp_from),
        ("MessageSid", message.sid),
        ("MessageStatus", status),
        ("SmsSid", message.sid),
        ("SmsStatus", status),
        ("To", message.to),
    ]
    if message.messaging_service_sid:
        params.append(("MessagingServiceSid", message.messaging_service_sid))
    if status == "sent":
        params.append(("StructuredMessage", "false"))
    if status in _EVENT_TYPE:
        params.append(("EventType", _EVENT_TYPE[status]))
    if code is not None:
        params += [
            ("ErrorCode", str(code)),
            ("ErrorMessage", CALLBACK_ERRORS.get(code, "Error")),
            ("ChannelStatusMessage", CALLBACK_ERRORS.get(code, "Error")),
        ]
    if status in ("delivered", "undelivered"):
        params.append(("RawDlrDoneDate", time.strftime("%y%m%d%H%M", time.gmtime(message.date_updated))))
    params.append(("EmulatorCallbackSeq", str(seq)))
    return params


async def run_lifecycle(state: EmulatorState, message: Message, account: Account) -> None:
    """Move a sent message through its outcome's statuses, POSTing a signed callback for each."""
    client = client_for_loop()
    for seq, (status, code) in enumerate(OUTCOMES[message.outcome], start=1):
        if state.callback_delay_seconds:
            await asyncio.sleep(state.callback_delay_seconds)
        _apply(state, message, account, status, code)
        if not message.status_callback or not message.send_callbacks:
            continue
        delivery = Delivery(
            kind="status_callback",
            url=message.status_callback,
            params=status_params(message, account, status, code, seq),
            meta={"status": status, "error_code": code, "seq": seq},
        )
        message.callbacks.append(delivery)
        await deliver_twilio(client, state, delivery, account.auth_token)


async def post_event_batches(
    state: EmulatorState, key: SendgridKey, mail_deliveries: list[Delivery], batches: list[list[dict[str, Any]]]
) -> None:
    """POST each batch of events, signed as SendGrid's Signed Event Webhook (FACTS §7.4)."""
    client = client_for_loop()
    for batch in batches:
        if state.callback_delay_seconds:
            await asyncio.sleep(state.callback_delay_seconds)
        url = key.event_webhook_url
        if not url:
            return
        payload = json.dumps(batch, separators=(",", ":")) + "\r\n"  # SendGrid ends its body with CRLF
        timestamp = str(int(state.now()))
        delivery = Delivery(kind="event_webhook", url=url, body=payload, meta={"events": [e["event"] for e in batch]})
        delivery.headers = {
            "Content-Type": "application/json",
            "User-Agent": "SendGrid Event API",
            "X-Twilio-Email-Event-Webhook-Signature": sendgrid_signature(key.private_key, timestamp, payload),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        }
        mail_deliveries.append(delivery)
        await _post(client, state, delivery, payload.encode(), {})
