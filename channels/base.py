"""The one small protocol every channel speaks, and the values that cross it.

A `Channel` is one tenant's account on one provider, its credentials already bound: the Twilio
WhatsApp adapter (channels/twilio_whatsapp.py), the SendGrid adapter (channels/sendgrid_email.py)
and the simulated test-mode channel (channels/simulated.py) all produce one. Every failure is a
`ChannelError` carrying its `FailureClass` (the one table of provider codes: channels/errors.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol, TypeVar


class FailureClass(StrEnum):
    TRANSIENT = "transient"  # 5xx, timeout, connection reset: retry
    RATE_LIMITED = "rate_limited"  # 429 / 20429: retry after retry_after
    WINDOW_CLOSED = "window_closed"  # 63016: outside the 24h window
    OPTED_OUT = "opted_out"  # 21610: the recipient sent STOP
    INVALID_RECIPIENT = "invalid_recipient"  # 21211, 21614, 63024, ...
    BAD_CREDENTIALS = "bad_credentials"  # 20003 / 401
    TEMPLATE_INVALID = "template_invalid"  # unknown or unapproved ContentSid
    MEDIA_INVALID = "media_invalid"  # type, size or URL refused
    PERMANENT = "permanent"  # anything else

    @property
    def retryable(self) -> bool:
        return self in (FailureClass.TRANSIENT, FailureClass.RATE_LIMITED)


class ChannelError(Exception):
    """A classified provider failure. `message` never contains credentials."""

    def __init__(
        self,
        failure: FailureClass,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
        ambiguous: bool = False,
        more_info: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{failure.value}: {message}" + (f" (code {code})" if code else ""))
        self.failure = failure
        self.message = message
        self.code = code
        # The provider's own pointer to the error's documentation (Twilio's `more_info`), and the id the
        # provider gave the refused request (Twilio's `Twilio-Request-Id` header): what its support asks for.
        self.more_info = more_info
        self.request_id = request_id
        self.http_status = http_status
        self.retry_after = retry_after
        # True when the request may have reached the provider and been carried out (a timeout, or the
        # connection dropped after the request was written): for a create, the message may exist.
        # False means it certainly was not carried out (refused connection, a REST error).
        self.ambiguous = ambiguous


class FetchUnsupported(ChannelError):
    """The provider cannot read one sent message back by its id (SendGrid, without the paid Email
    Activity API): the caller waits for the provider's events instead."""

    def __init__(self, provider: str) -> None:
        super().__init__(FailureClass.PERMANENT, f"{provider} cannot read a sent message back by its id")


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    status: str
    raw: dict[str, Any] = field(default_factory=dict)
    # The provider's id of the HTTP request that created the message (Twilio's `Twilio-Request-Id`), if any.
    request_id: str | None = None


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
    to: str  # E.164 phone or a WhatsApp BSUID, without the whatsapp: prefix
    kind: Literal["session", "media", "template"]
    from_: str | None = None  # E.164 sender, used when no Messaging Service is given
    messaging_service_sid: str | None = None
    body: str | None = None
    media_url: str | None = None
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None  # {"1": "Ava", "2": "18473"}
    status_callback: str | None = None
    validity_period: int | None = None  # seconds a copy may wait in Twilio's queue (1-36000)


@dataclass(frozen=True)
class ListedMessage:
    """One Message from a provider's list, reduced to what tells whether it is ours."""

    sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str | None
    status: str
    direction: str
    date_created: datetime | None
    error_code: str | None = None
    error_message: str | None = None


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


M_contra = TypeVar("M_contra", contravariant=True)


class Channel(Protocol[M_contra]):
    """One tenant's account on one provider. Every method raises ChannelError (classified) for what
    the provider refuses or cannot be asked; ValueError only for a message built wrong (a caller bug)."""

    @property
    def provider(self) -> str:
        """The provider's name as attempts, metrics and logs record it: twilio | sendgrid | simulated."""
        ...

    async def send(self, message: M_contra) -> SendResult:
        """Hand one message to the provider. `ChannelError.ambiguous` says the provider may have it."""
        ...

    async def fetch(self, provider_id: str) -> SendResult:
        """The message as the provider has it now (the reconciler, an ambiguous send), or
        FetchUnsupported where the provider has no per-message read."""
        ...

    async def verify_credentials(self) -> Mapping[str, Any]:
        """A cheap authenticated call: what the provider says of the account; bad_credentials when refused."""
        ...


class ListsRecent(Protocol):
    """A channel that can list the messages recently sent to one address (Twilio's Messages list):
    how an ambiguous send is looked for when its id was never learnt (app/notify/ambiguity.py)."""

    async def recent_messages(self, to: str, *, since: datetime, limit: int = ...) -> list[ListedMessage]: ...
