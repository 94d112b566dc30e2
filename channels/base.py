"""The one small protocol every channel speaks."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal


class FailureClass(StrEnum):
    TRANSIENT = "transient"                  # 5xx, timeout, connection reset: retry
    RATE_LIMITED = "rate_limited"            # 429 / 20429: retry after retry_after
    WINDOW_CLOSED = "window_closed"          # 63016: outside the 24h window
    OPTED_OUT = "opted_out"                  # 21610: the recipient sent STOP
    INVALID_RECIPIENT = "invalid_recipient"  # 21211, 21614, 63024, ...
    BAD_CREDENTIALS = "bad_credentials"      # 20003 / 401
    TEMPLATE_INVALID = "template_invalid"    # unknown or unapproved ContentSid
    MEDIA_INVALID = "media_invalid"          # type, size or URL refused
    PERMANENT = "permanent"                  # anything else

    @property
    def retryable(self) -> bool:
        return self in (FailureClass.TRANSIENT, FailureClass.RATE_LIMITED)


class ChannelError(Exception):
    """A classified provider failure. `message` never contains credentials."""

    def __init__(self, failure: FailureClass, message: str, *, code: str | None = None,
                 http_status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(f"{failure.value}: {message}" + (f" (code {code})" if code else ""))
        self.failure = failure
        self.message = message
        self.code = code
        self.http_status = http_status
        self.retry_after = retry_after


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    status: str
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TwilioCredentials:
    account_sid: str
    auth_token: str = field(repr=False)
    api_key_sid: str | None = None
    api_key_secret: str | None = field(default=None, repr=False)
    # Identifies this credential version: SDK clients are cached per (account_sid, version).
    version: int = 1


@dataclass(frozen=True)
class WhatsAppMessage:
    to: str                                  # E.164 phone or a WhatsApp BSUID, without the whatsapp: prefix
    kind: Literal["session", "media", "template"]
    from_: str | None = None                 # E.164 sender, used when no Messaging Service is given
    messaging_service_sid: str | None = None
    body: str | None = None
    media_url: str | None = None
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None  # {"1": "Ava", "2": "18473"}
    status_callback: str | None = None


@dataclass(frozen=True)
class SendgridCredentials:
    api_key: str = field(repr=False)
    from_email: str = ""
    from_name: str | None = None


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    template_id: str | None = None
    dynamic_template_data: dict[str, Any] | None = None
    custom_args: dict[str, str] = field(default_factory=dict)
