"""What differs between a tenant's Twilio and SendGrid credentials, as one table (`SPECS`).

Everything else (verify with the provider, seal, store, audit, mask on read, the routes under
/v1/providers) is written once, over a `ProviderSpec`, in service.py and controllers.py. A new
provider is one more spec here (and its Channel in channels/).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import providers
from app.core.errors import Conflict, ValidationFailed
from channels.base import Channel, SendgridCredentials, TwilioCredentials
from tenants.audit.service import mask
from tenants.credentials.models import SendgridCredential, TwilioCredential
from tenants.credentials.schemas import (
    SendgridCredentialsIn,
    SendgridCredentialsOut,
    TwilioCredentialsIn,
    TwilioCredentialsOut,
)
from tenants.credentials.sealing import seal, unseal

Row = TypeVar("Row", TwilioCredential, SendgridCredential)
In = TypeVar("In", TwilioCredentialsIn, SendgridCredentialsIn)
Creds = TypeVar("Creds", TwilioCredentials, SendgridCredentials)


@dataclass(frozen=True)
class ProviderSpec(Generic[Row, In, Creds]):
    name: str  # the path segment (/v1/providers/<name>) and audit actions (provider.<name>.created)
    title: str  # how people name it in messages: "Twilio"
    model: type[Row]
    data_in: type[In]
    data_out: type[Any]
    pointer: str  # the field a refused credential's 422 points at
    creds_of: Callable[[In], Creds]  # the secrets a PUT carries, for the provider's check
    secrets: Callable[[Row], Creds]  # decrypted in memory only; never logged or returned
    snapshot: Callable[[Row, Creds], dict[str, Any]]  # masked: the audit log's before/after and the GET body
    fill: Callable[[uuid.UUID, Row, In], None]  # the columns from a PUT, secrets sealed
    target_id: Callable[[Row], str]  # the audit log's target id
    channel: Callable[[Creds], Channel[Any]]
    check: Callable[[In], None]  # what the schema cannot say about a PUT (before the provider is asked)
    # After the provider accepted the credentials: refuse what another tenant already holds (Conflict).
    claim: Callable[[AsyncSession, uuid.UUID, In], Awaitable[None]] | None = None
    taken: Callable[[], Conflict] | None = None  # what a unique-constraint race at flush means, if it can happen
    cache_key: Callable[[Row], str] | None = None  # the webhook path's cache of decrypted credentials

    @property
    def table(self) -> str:
        return self.model.__tablename__


# --- Twilio -----------------------------------------------------------------------------------

_TW = TwilioCredential.__tablename__


def _twilio_taken() -> Conflict:
    return Conflict(
        "this Twilio AccountSid is registered to another tenant",
        errors=[{"pointer": "/account_sid", "detail": "already registered"}],
    )


def twilio_secrets(row: TwilioCredential) -> TwilioCredentials:
    return TwilioCredentials(
        account_sid=row.account_sid,
        auth_token=unseal(row.tenant_id, _TW, "auth_token_enc", row.auth_token_enc),
        api_key_sid=row.api_key_sid,
        api_key_secret=unseal(row.tenant_id, _TW, "api_key_secret_enc", row.api_key_secret_enc)
        if row.api_key_secret_enc
        else None,
        version=row.version,
    )


def _twilio_snapshot(row: TwilioCredential, creds: TwilioCredentials) -> dict[str, Any]:
    return {
        "account_sid": row.account_sid,
        "auth_token": mask(creds.auth_token),
        "api_key_sid": row.api_key_sid,
        "api_key_secret": mask(creds.api_key_secret),
        "messaging_service_sid": row.messaging_service_sid,
        "whatsapp_from": row.whatsapp_from,
        "status": row.status,
    }


def _twilio_fill(tenant_id: uuid.UUID, row: TwilioCredential, data: TwilioCredentialsIn) -> None:
    row.account_sid = data.account_sid
    row.auth_token_enc = seal(tenant_id, _TW, "auth_token_enc", data.auth_token)
    row.api_key_sid = data.api_key_sid
    row.api_key_secret_enc = (
        seal(tenant_id, _TW, "api_key_secret_enc", data.api_key_secret) if data.api_key_secret else None
    )
    row.messaging_service_sid = data.messaging_service_sid
    row.whatsapp_from = data.whatsapp_from


def _twilio_check(data: TwilioCredentialsIn) -> None:
    if (data.api_key_sid is None) != (data.api_key_secret is None):
        missing = "/api_key_secret" if data.api_key_secret is None else "/api_key_sid"
        raise ValidationFailed("api_key_sid and api_key_secret go together", pointer=missing)


async def _twilio_claim(session: AsyncSession, tenant_id: uuid.UUID, data: TwilioCredentialsIn) -> None:
    # Asked only after Twilio accepted the credentials: a caller who has not proved it owns the account must
    # not learn that another tenant registered it (a dummy token gets the same 422 as any wrong one).
    owner = (
        await session.execute(
            select(TwilioCredential.tenant_id).where(TwilioCredential.account_sid == data.account_sid)
        )
    ).scalar_one_or_none()
    if owner is not None and owner != tenant_id:
        raise _twilio_taken()


TWILIO: ProviderSpec[TwilioCredential, TwilioCredentialsIn, TwilioCredentials] = ProviderSpec(
    name="twilio",
    title="Twilio",
    model=TwilioCredential,
    data_in=TwilioCredentialsIn,
    data_out=TwilioCredentialsOut,
    pointer="/auth_token",
    creds_of=lambda d: TwilioCredentials(d.account_sid, d.auth_token, d.api_key_sid, d.api_key_secret),
    secrets=twilio_secrets,
    snapshot=_twilio_snapshot,
    fill=_twilio_fill,
    target_id=lambda row: row.account_sid,
    channel=lambda creds: providers.twilio().channel(creds),
    check=_twilio_check,
    claim=_twilio_claim,
    taken=_twilio_taken,
    cache_key=lambda row: row.account_sid,
)


# --- SendGrid ---------------------------------------------------------------------------------

_SG = SendgridCredential.__tablename__


def sendgrid_secrets(row: SendgridCredential) -> SendgridCredentials:
    return SendgridCredentials(
        api_key=unseal(row.tenant_id, _SG, "api_key_enc", row.api_key_enc),
        from_email=row.from_email,
        from_name=row.from_name,
    )


def _sendgrid_snapshot(row: SendgridCredential, creds: SendgridCredentials) -> dict[str, Any]:
    return {
        "api_key": mask(creds.api_key),
        "from_email": row.from_email,
        "from_name": row.from_name,
        "event_webhook_public_key": row.event_webhook_public_key,
        "status": row.status,
    }


def _sendgrid_fill(tenant_id: uuid.UUID, row: SendgridCredential, data: SendgridCredentialsIn) -> None:
    row.api_key_enc = seal(tenant_id, _SG, "api_key_enc", data.api_key)
    row.from_email, row.from_name = data.from_email, data.from_name
    row.event_webhook_public_key = data.event_webhook_public_key


def check_public_key(encoded: str) -> None:
    """SendGrid's Event Webhook verification key: base64 DER, P-256."""
    try:
        key = load_der_public_key(base64.b64decode(encoded, validate=True))
    except ValueError:
        raise ValidationFailed("not a base64 DER public key", pointer="/event_webhook_public_key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValidationFailed(
            "SendGrid signs events with a P-256 (secp256r1) key", pointer="/event_webhook_public_key"
        )


def _sendgrid_check(data: SendgridCredentialsIn) -> None:
    if data.event_webhook_public_key:
        check_public_key(data.event_webhook_public_key)


SENDGRID: ProviderSpec[SendgridCredential, SendgridCredentialsIn, SendgridCredentials] = ProviderSpec(
    name="sendgrid",
    title="SendGrid",
    model=SendgridCredential,
    data_in=SendgridCredentialsIn,
    data_out=SendgridCredentialsOut,
    pointer="/api_key",
    creds_of=lambda d: SendgridCredentials(api_key=d.api_key, from_email=d.from_email, from_name=d.from_name),
    secrets=sendgrid_secrets,
    snapshot=_sendgrid_snapshot,
    fill=_sendgrid_fill,
    # One SendGrid account per tenant and no id of its own worth logging: the tenant names it.
    target_id=lambda row: str(row.tenant_id),
    channel=lambda creds: providers.sendgrid().channel(creds),
    check=_sendgrid_check,
)

SPECS: tuple[ProviderSpec[Any, Any, Any], ...] = (TWILIO, SENDGRID)
