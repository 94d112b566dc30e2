"""Twilio's Content API: the account's templates with their WhatsApp approval (`GET /v1/ContentAndApprovals`).

Read with the official SDK (`client.content.v1.content_and_approvals.list_async`) over the same pooled,
emulator-aware clients as the Messages API (channels/twilio_whatsapp.py: every *.twilio.com host,
content.twilio.com included, goes to NOTIFYGW_TWILIO_API_BASE_URL when it is set). Knows one Twilio
account at a time and nothing of tenants.

What Twilio reports is kept as it says it (`twilio_status`, the raw string); `approval_status` maps the
statuses Twilio documents onto our short list, and anything else onto `unknown`. Only `approved` may be sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from channels.base import TwilioCredentials

if TYPE_CHECKING:  # the SDKs (~40 MiB) load with the adapter, on first use (app/core/providers.py)
    from channels.twilio_whatsapp import TwilioWhatsApp

# Twilio's WhatsApp approval statuses (Content API docs and twilio_content_v1.json): unsubmitted until an
# approval request is made, received then pending while Meta reviews it, then approved or rejected; Meta may
# later pause a template for poor quality, or disable it. Anything else is `unknown`, and never sent.
APPROVAL_STATUSES: dict[str, str] = {
    "approved": "approved",
    "pending": "pending",
    "received": "pending",
    "rejected": "rejected",
    "unsubmitted": "unsubmitted",
    "paused": "paused",
    "disabled": "disabled",
}
# WhatsApp template categories; TRANSACTIONAL is the name before Meta's 2023 split (UTILITY now).
CATEGORIES = frozenset({"UTILITY", "MARKETING", "AUTHENTICATION", "TRANSACTIONAL"})
PAGE_SIZE = 500  # the spec allows 1..1000 per page
MAX_ITEMS = 10_000  # an account with more is read up to this many


def approval_of(twilio_status: str | None) -> str:
    """Our approval status for Twilio's string: a known one, `unsubmitted` when there is none, else `unknown`."""
    if not twilio_status:
        return "unsubmitted"
    return APPROVAL_STATUSES.get(twilio_status.strip().lower(), "unknown")


@dataclass(frozen=True)
class ContentItem:
    """One Content resource as ContentAndApprovals reports it, reduced to what routing and checks need."""

    sid: str
    account_sid: str | None
    friendly_name: str | None
    language: str | None
    variables: dict[str, str]  # Twilio's placeholders and their sample values: {"1": "Customer_Name"}
    types: list[str]  # the content types it carries: ["twilio/text"]
    twilio_status: str | None  # the WhatsApp approval status exactly as Twilio reports it
    category: str | None  # UTILITY, MARKETING, AUTHENTICATION, TRANSACTIONAL, or what Twilio says
    rejection_reason: str | None = None
    date_updated: datetime | None = None
    raw_approval: dict[str, Any] = field(default_factory=dict)

    @property
    def approval_status(self) -> str:
        return approval_of(self.twilio_status)


def _whatsapp_approval(approval_requests: Any) -> dict[str, Any]:
    """The spec shows the WhatsApp approval flat under `approval_requests`; some answers nest it under
    `whatsapp` (as ApprovalRequests does). Both are read."""
    if not isinstance(approval_requests, dict):
        return {}
    nested = approval_requests.get("whatsapp")
    return cast(dict[str, Any], nested) if isinstance(nested, dict) else approval_requests


def item_of(instance: Any) -> ContentItem:
    """A ContentAndApprovalsInstance (or anything with its attributes) as a ContentItem."""
    approval = _whatsapp_approval(getattr(instance, "approval_requests", None))
    variables = getattr(instance, "variables", None) or {}
    types = getattr(instance, "types", None) or {}
    category = approval.get("category") or None
    return ContentItem(
        sid=str(instance.sid),
        account_sid=getattr(instance, "account_sid", None),
        friendly_name=getattr(instance, "friendly_name", None),
        language=getattr(instance, "language", None) or None,
        variables={str(k): "" if v is None else str(v) for k, v in variables.items()}
        if isinstance(variables, dict)
        else {},
        types=sorted(str(t) for t in types) if isinstance(types, dict) else [],
        twilio_status=str(approval["status"]) if approval.get("status") else None,
        category=str(category).upper() if category else None,
        rejection_reason=str(approval.get("rejection_reason") or "") or None,
        date_updated=getattr(instance, "date_updated", None),
        raw_approval=dict(approval),
    )


@dataclass(frozen=True)
class TwilioContent:
    """The Content API of one Twilio deployment (or the emulator), over the WhatsApp adapter's clients."""

    deployment: TwilioWhatsApp

    async def contents(self, creds: TwilioCredentials, *, limit: int = MAX_ITEMS) -> list[ContentItem]:
        """Every Content resource of the account, with its WhatsApp approval. Raises ChannelError
        (classified: bad_credentials when Twilio refuses them, transient when it cannot be reached)."""
        client = self.deployment.client(creds)

        async def read() -> list[ContentItem]:
            listed = await client.content.v1.content_and_approvals.list_async(limit=limit, page_size=PAGE_SIZE)
            return [item_of(i) for i in listed if getattr(i, "sid", None)]

        found, _ = await self.deployment.call(read)
        return cast(list[ContentItem], found)
