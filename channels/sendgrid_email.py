"""Email through SendGrid's v3 Mail Send, with the official (synchronous) sendgrid SDK.

The SDK uses urllib with no default timeout, so every call runs in a worker thread with
`client.timeout` set (FACTS §7.2), and the host is fixed in the constructor, the only place the
SDK honours it.
"""

from __future__ import annotations

import asyncio
import email.utils
import http.client
import json
import time
import urllib.error
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import python_http_client.exceptions as sg_errors
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, From, Mail, To

from channels.base import (
    Channel,
    ChannelError,
    EmailMessage,
    FailureClass,
    FetchUnsupported,
    SendgridCredentials,
    SendResult,
)
from channels.errors import classify_sendgrid

DEFAULT_HOST = "https://api.sendgrid.com"


def build_mail(creds: SendgridCredentials, message: EmailMessage) -> Mail:
    """The SDK Mail for a dynamic template, or for subject + text and/or html.
    Raises ValueError when the message is neither (a caller bug, not a provider failure)."""
    if not creds.from_email:
        raise ValueError("SendGrid credentials carry no from_email")
    mail = Mail(from_email=From(creds.from_email, creds.from_name), to_emails=To(message.to))
    if message.template_id:
        mail.template_id = message.template_id
        if message.dynamic_template_data:
            mail.dynamic_template_data = message.dynamic_template_data
        if message.subject:  # templates may take their subject from the data; an explicit one wins
            mail.subject = message.subject
    else:
        if not message.subject or not (message.text or message.html):
            raise ValueError("an email needs a template_id, or a subject with text and/or html")
        mail.subject = message.subject
        if message.text:
            mail.add_content(message.text, "text/plain")
        if message.html:
            mail.add_content(message.html, "text/html")
    for key, value in message.custom_args.items():
        # SendGrid requires string values and echoes them on every event: our correlation ids.
        mail.add_custom_arg(CustomArg(str(key), str(value)))
    return mail


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """SendGrid sends X-RateLimit-Reset (epoch seconds) on 429; honour Retry-After too."""
    if not headers:
        return None
    value = headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            return None
    return None


def _error_text(exc: sg_errors.HTTPError) -> str:
    try:
        errors = json.loads(exc.body or b"{}").get("errors") or []
        texts = [str(e["message"]) for e in errors if isinstance(e, dict) and e.get("message")]
    except (ValueError, AttributeError):
        texts = []
    return "; ".join(texts) or f"SendGrid answered HTTP {exc.status_code}"


class SendGridEmail:
    """One SendGrid deployment (`host` is the emulator's URL in dev and tests), and `channel(creds)`."""

    def __init__(self, *, host: str | None = None, timeout: float = 10.0) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.host = (host or DEFAULT_HOST).rstrip("/")
        self.timeout = timeout

    def client(self, creds: SendgridCredentials) -> SendGridAPIClient:
        if not creds.api_key:
            # Never let the SDK fall back to SENDGRID_API_KEY from the environment.
            raise ChannelError(FailureClass.BAD_CREDENTIALS, "SendGrid API key is missing")
        sg = SendGridAPIClient(api_key=creds.api_key, host=self.host)
        sg.client.timeout = self.timeout
        return sg

    async def run(self, call: Callable[[], Any]) -> Any:
        try:
            # The thread cannot be cancelled; the urllib timeout ends it, the outer one only
            # guarantees the caller is not held longer than that even if urllib misbehaves.
            return await asyncio.wait_for(asyncio.to_thread(call), self.timeout + 1)
        except sg_errors.HTTPError as exc:
            failure = classify_sendgrid(exc.status_code)
            retry_after = _retry_after(exc.headers) if failure is FailureClass.RATE_LIMITED else None
            raise ChannelError(failure, _error_text(exc), http_status=exc.status_code, retry_after=retry_after) from exc
        except TimeoutError as exc:
            raise ChannelError(FailureClass.TRANSIENT, f"SendGrid did not answer within {self.timeout:g}s") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise ChannelError(FailureClass.TRANSIENT, f"SendGrid did not answer within {self.timeout:g}s") from exc
            raise ChannelError(
                FailureClass.TRANSIENT, f"could not reach SendGrid ({exc.reason.__class__.__name__})"
            ) from exc
        except (ConnectionError, http.client.HTTPException) as exc:
            raise ChannelError(FailureClass.TRANSIENT, f"could not reach SendGrid ({exc.__class__.__name__})") from exc

    def channel(self, creds: SendgridCredentials) -> SendGridChannel:
        """One tenant's SendGrid account behind the Channel protocol (channels/base.py)."""
        return SendGridChannel(self, creds)


@dataclass(frozen=True)
class SendGridChannel:
    """send / verify_credentials for one SendGrid account. Implements Channel[EmailMessage]; `fetch`
    is unsupported: Mail Send returns only an X-Message-Id, and reading a message back needs the
    Email Activity API (a paid add-on), so SendGrid's signed events are the only read-back."""

    deployment: SendGridEmail
    creds: SendgridCredentials
    provider: str = "sendgrid"

    async def send(self, message: EmailMessage) -> SendResult:
        mail = build_mail(self.creds, message)
        sg = self.deployment.client(self.creds)
        response = await self.deployment.run(lambda: sg.send(mail))
        message_id = response.headers.get("X-Message-Id")
        if not message_id:
            # Accepted but uncorrelatable: events could never be matched, so say so loudly.
            raise ChannelError(
                FailureClass.PERMANENT,
                "SendGrid accepted the mail without an X-Message-Id",
                http_status=response.status_code,
            )
        return SendResult(
            provider_message_id=message_id,
            status="accepted",
            raw={"status_code": response.status_code, "x_message_id": message_id},
        )

    async def fetch(self, provider_id: str) -> SendResult:
        raise FetchUnsupported("SendGrid")

    async def verify_credentials(self) -> dict[str, Any]:
        """A cheap authenticated call (GET /v3/scopes): {"scopes": [...]}. Raises bad_credentials on
        401/403, or when the key cannot send mail at all."""
        sg = self.deployment.client(self.creds)
        response = await self.deployment.run(lambda: sg.client.scopes.get())
        try:
            scopes = [str(s) for s in json.loads(response.body or b"{}").get("scopes") or []]
        except (ValueError, AttributeError):
            scopes = []
        if scopes and "mail.send" not in scopes:
            raise ChannelError(
                FailureClass.BAD_CREDENTIALS,
                "the SendGrid API key lacks the mail.send scope",
                http_status=response.status_code,
            )
        return {"scopes": scopes}


if TYPE_CHECKING:  # mypy --strict checks that the channel really is one (channels/base.py)

    def _conforms(channel: SendGridChannel) -> Channel[EmailMessage]:
        return channel
