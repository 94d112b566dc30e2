"""One URL for every tenant's Twilio subaccount, and one per tenant for SendGrid events.

Configure in Twilio (per number or Messaging Service):
  status callback: $NOTIFYGW_PUBLIC_BASE_URL/webhooks/twilio/status  (we also set it on every send)
  inbound (A message comes in): $NOTIFYGW_PUBLIC_BASE_URL/webhooks/twilio/inbound
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import parse_qsl

from litestar import Request, Response, post
from litestar.status_codes import HTTP_204_NO_CONTENT

from app.core import jsonbody
from app.core.config import get_settings
from app.core.deps import DbSession
from app.core.errors import ValidationFailed
from app.metrics.registry import WEBHOOK_LATENCY
from app.webhooks.ingest import InvalidSignature, MalformedCallback, first, parse_form, store, store_received
from channels.signatures import (
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
    TWILIO_SIGNATURE_SETTINGS_HEADER,
    twilio_signature_algorithm,
    validate_twilio_signature,
    verify_sendgrid_event,
)
from tenants.credentials import service as credentials

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
SENDGRID_TOLERANCE_SECONDS = 600


async def _authenticate(
    request: Request[Any, Any, Any],
) -> tuple[uuid.UUID, list[tuple[str, str]], list[tuple[str, str]]]:
    """(tenant id, form pairs, query pairs) for a Twilio request whose signature verifies with its own tenant's token."""
    if not request.headers.get("content-type", "").lower().startswith("application/x-www-form-urlencoded"):
        raise MalformedCallback("Twilio callbacks are application/x-www-form-urlencoded")
    form = parse_form(await request.body())
    account_sid = first(form, "AccountSid")
    if not account_sid or not _ACCOUNT_SID.match(account_sid):
        raise InvalidSignature()
    owner = await credentials.twilio_for_account(account_sid)
    if owner is None:
        raise InvalidSignature()
    query = request.scope.get("query_string", b"").decode("latin-1")
    # Validate against the URL Twilio was given (our public base), not whatever Host we were reached by.
    path = request.scope.get("root_path", "") + request.scope["path"]  # what request.url.path holds, unparsed
    url = get_settings().public_base_url + path + (f"?{query}" if query else "")
    algorithm = twilio_signature_algorithm(request.headers.get(TWILIO_SIGNATURE_SETTINGS_HEADER))
    if not validate_twilio_signature(
        owner.creds.auth_token, url, form, request.headers.get(TWILIO_SIGNATURE_HEADER), algorithm=algorithm
    ):
        raise InvalidSignature()
    return owner.tenant_id, form, parse_qsl(query, keep_blank_values=True)


@post(
    "/webhooks/twilio/status",
    status_code=HTTP_204_NO_CONTENT,
    tags=["webhooks"],
    security=[],
    summary="Twilio status callbacks, for every tenant's subaccount",
    description="Validated with the X-Twilio-Signature of the tenant that owns the form's AccountSid. "
    "Duplicates answer 204 and are not processed again.",
)
async def twilio_status(request: Request[Any, Any, Any]) -> None:
    # No session: the one write autocommits by itself (ingest.store_received).
    with WEBHOOK_LATENCY.labels("status").time():
        await _status(request)


async def _status(request: Request[Any, Any, Any]) -> None:
    tenant_id, form, query = await _authenticate(request)
    sid = first(form, "MessageSid")
    status = first(form, "MessageStatus") or first(form, "SmsStatus")
    if not sid or not status:
        raise MalformedCallback("MessageSid and MessageStatus are required")
    # Whose message it names is the applying worker's question, within this tenant only: another
    # tenant's SID or attempt id finds nothing there and the event stays an orphan (app/webhooks/service.py).
    token = request.headers.get("i-twilio-idempotency-token")
    await store_received(tenant_id, "status", token or f"{sid}:{status}", {"form": form, "query": query})


@post(
    "/webhooks/twilio/inbound",
    tags=["webhooks"],
    security=[],
    media_type="text/xml",
    summary="Twilio inbound messages, for every tenant's subaccount (answers empty TwiML)",
)
async def twilio_inbound(request: Request[Any, Any, Any]) -> Response[str]:
    with WEBHOOK_LATENCY.labels("inbound").time():
        return await _inbound(request)


async def _inbound(request: Request[Any, Any, Any]) -> Response[str]:
    tenant_id, form, query = await _authenticate(request)
    sid = first(form, "MessageSid") or first(form, "SmsMessageSid")
    if not sid:
        raise MalformedCallback("MessageSid is required")
    token = request.headers.get("i-twilio-idempotency-token")
    await store_received(tenant_id, "inbound", token or sid, {"form": form, "query": query})
    return Response(EMPTY_TWIML, media_type="text/xml", status_code=200)


@post(
    "/webhooks/sendgrid/{tenant_id:uuid}",
    status_code=HTTP_204_NO_CONTENT,
    tags=["webhooks"],
    security=[],
    summary="SendGrid signed Event Webhook for one tenant",
)
async def sendgrid_events(tenant_id: uuid.UUID, request: Request[Any, Any, Any], db_session: DbSession) -> None:
    with WEBHOOK_LATENCY.labels("sendgrid").time():
        await _sendgrid(tenant_id, request, db_session)


async def _sendgrid(tenant_id: uuid.UUID, request: Request[Any, Any, Any], db_session: DbSession) -> None:
    body = await request.body()
    row = await credentials.find_sendgrid(db_session, tenant_id)
    if (
        row is None
        or not row.event_webhook_public_key
        or not verify_sendgrid_event(
            row.event_webhook_public_key,
            body,
            request.headers.get(SENDGRID_SIGNATURE_HEADER),
            request.headers.get(SENDGRID_TIMESTAMP_HEADER),
            max_age_seconds=SENDGRID_TOLERANCE_SECONDS,
        )
    ):
        raise InvalidSignature()
    try:  # bounded depth and no U+0000, as every JSON body: a signed batch is still the sender's to get right
        events = jsonbody.decode(body)
    except (jsonbody.MalformedJson, ValidationFailed) as exc:
        raise MalformedCallback(f"the batch is refused: {exc.detail}", errors=exc.errors) from None
    except ValueError:
        raise MalformedCallback("the body is not JSON") from None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise MalformedCallback("SendGrid posts a JSON array of event objects")
    for event in events:
        key = str(
            event.get("sg_event_id") or f"{event.get('sg_message_id')}:{event.get('event')}:{event.get('timestamp')}"
        )
        await store(db_session, tenant_id, "sendgrid", key, {"event": event})


ROUTES = [twilio_status, twilio_inbound, sendgrid_events]
