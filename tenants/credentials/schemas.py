from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

# Anchored patterns also refuse whitespace around a pasted secret.
AccountSid = Annotated[str, msgspec.Meta(pattern=r"^AC[0-9a-fA-F]{32}$", description="AC + 32 hex digits")]
ApiKeySid = Annotated[str, msgspec.Meta(pattern=r"^SK[0-9a-fA-F]{32}$", description="SK + 32 hex digits")]
MessagingServiceSid = Annotated[str, msgspec.Meta(pattern=r"^MG[0-9a-fA-F]{32}$", description="MG + 32 hex digits")]
AuthToken = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-fA-F]{32}$", description="32 hex digits")]
ApiKeySecret = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]{16,128}$")]
WhatsAppSender = Annotated[str, msgspec.Meta(pattern=r"^whatsapp:\+[1-9][0-9]{6,14}$", description="whatsapp:+E164")]
SendgridKey = Annotated[
    str, msgspec.Meta(pattern=r"^SG\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}$", description="SG.xxx.yyy")
]
Email = Annotated[str, msgspec.Meta(pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$", max_length=254)]
PublicKey = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z0-9+/=]{40,400}$", description="base64 DER SubjectPublicKeyInfo (P-256)")
]


class TwilioCredentialsIn(msgspec.Struct, forbid_unknown_fields=True):
    account_sid: AccountSid
    auth_token: AuthToken
    api_key_sid: ApiKeySid | None = None
    api_key_secret: ApiKeySecret | None = None
    messaging_service_sid: MessagingServiceSid | None = None
    whatsapp_from: WhatsAppSender | None = None


class TwilioCredentialsOut(msgspec.Struct):
    account_sid: str
    auth_token: str
    api_key_sid: str | None
    api_key_secret: str | None
    messaging_service_sid: str | None
    whatsapp_from: str | None
    status: str
    status_reason: str | None
    updated_at: datetime


class SendgridCredentialsIn(msgspec.Struct, forbid_unknown_fields=True):
    api_key: SendgridKey
    from_email: Email
    from_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    event_webhook_public_key: PublicKey | None = None


class SendgridCredentialsOut(msgspec.Struct):
    api_key: str
    from_email: str
    from_name: str | None
    event_webhook_public_key: str | None
    status: str
    status_reason: str | None
    updated_at: datetime
