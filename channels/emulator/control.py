"""The control API under /_emulator/: make accounts, templates and keys, simulate users, move the clock.

JSON in, JSON out; bad input is a 4xx {"error": ...}, never a 500.
"""

from __future__ import annotations

import json
import mimetypes
import re
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response, get, patch, post, put
from litestar.datastructures import CacheControlHeader

from channels.emulator import schemas
from channels.emulator.callbacks import deliver_twilio
from channels.emulator.errors import control_error
from channels.emulator.state import (
    APPROVAL_STATUSES,
    CATEGORIES,
    Delivery,
    EmulatorState,
    Message,
    SenderLimits,
    Template,
    sid,
)
from channels.emulator.twilio_api import BSUID, CONTENT_SID, E164, PREFIX, valid_url
from channels.emulator.webhook_client import client_for_loop

T = TypeVar("T")
VARIABLE = re.compile(r"^[A-Za-z0-9_]{1,64}$")


async def _decode(request: Request[Any, Any, Any], kind: type[T]) -> T | Response[Any]:
    raw = await request.body()
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        return control_error(422, str(exc))
    except msgspec.DecodeError as exc:
        return control_error(400, f"malformed JSON: {exc}")


def _bad_url(url: str | None, name: str) -> Response[Any] | None:
    if url is not None and not valid_url(url):
        return control_error(422, f"{name} must be an http(s) URL with a host name", field=name)
    return None


# Responses that carry credentials (fake ones, but shaped like real ones) are never cached.
NO_STORE = CacheControlHeader(no_store=True)


def _account_json(account: Any) -> dict[str, Any]:
    return {
        "account_sid": account.sid,
        "auth_token": account.auth_token,
        "api_key_sid": account.api_key_sid,
        "api_key_secret": account.api_key_secret,
        "whatsapp_from": account.whatsapp_from,
        "messaging_service_sid": account.messaging_service_sid,
        "friendly_name": account.friendly_name,
        "inbound_url": account.inbound_url,
    }


@post("/_emulator/twilio/accounts", include_in_schema=False, cache_control=NO_STORE)
async def create_account(request: Request[Any, Any, Any], emu: EmulatorState) -> Response[Any]:
    data = await _decode(request, schemas.AccountCreate)
    if isinstance(data, Response):
        return data
    if bad := _bad_url(data.inbound_url, "inbound_url"):
        return bad
    account = emu.create_account(friendly_name=data.friendly_name, inbound_url=data.inbound_url)
    return Response(_account_json(account), status_code=201)


@patch("/_emulator/twilio/accounts/{account_sid:str}", include_in_schema=False, cache_control=NO_STORE)
async def update_account(request: Request[Any, Any, Any], account_sid: str, emu: EmulatorState) -> Response[Any]:
    account = emu.accounts.get(account_sid)
    if account is None:
        return control_error(404, f"no account {account_sid}")
    data = await _decode(request, schemas.AccountPatch)
    if isinstance(data, Response):
        return data
    if bad := _bad_url(data.inbound_url, "inbound_url"):
        return bad
    account.inbound_url = data.inbound_url
    return Response(_account_json(account), status_code=200)


@put("/_emulator/twilio/accounts/{account_sid:str}/limits", include_in_schema=False)
async def set_limits(request: Request[Any, Any, Any], account_sid: str, emu: EmulatorState) -> Response[Any]:
    """The messaging-limit tier and MPS of the account's WhatsApp sender (FACTS §6.1); replaces both."""
    account = emu.accounts.get(account_sid)
    if account is None:
        return control_error(404, f"no account {account_sid}")
    data = await _decode(request, schemas.SenderLimitsPut)
    if isinstance(data, Response):
        return data
    if data.tier is not None and not 1 <= data.tier <= 10_000_000:
        return control_error(422, "tier must be a number of people from 1, or null for no limit", field="tier")
    if data.mps is not None and not 0 < data.mps <= 10_000:
        return control_error(422, "mps must be a positive number of messages per second, or null", field="mps")
    limits = emu.sender_limits.setdefault(account.whatsapp_from, SenderLimits())
    limits.tier, limits.mps = data.tier, data.mps
    return Response({"sender": account.whatsapp_from, **limits.to_dict(emu.now())}, status_code=200)


@get("/_emulator/twilio/accounts/{account_sid:str}/limits", include_in_schema=False)
async def read_limits(account_sid: str, emu: EmulatorState) -> Response[Any]:
    account = emu.accounts.get(account_sid)
    if account is None:
        return control_error(404, f"no account {account_sid}")
    limits = emu.sender_limits.get(account.whatsapp_from) or SenderLimits()
    return Response({"sender": account.whatsapp_from, **limits.to_dict(emu.now())}, status_code=200)


APPROVAL = re.compile(r"^[a-z_]{1,32}$")  # a known status, or any other word Twilio might one day report
CATEGORY = re.compile(r"^[A-Z_]{1,32}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Za-z0-9]{2,8})*$")


def _template_json(template: Template) -> dict[str, Any]:
    return {
        "content_sid": template.content_sid,
        "account_sid": template.account_sid,
        "variables": template.variables,
        "body": template.body,
        "approval": template.approval,
        "category": template.category,
        "language": template.language,
        "rejection_reason": template.rejection_reason,
    }


def _bad_review(approval: str | None, category: str | None) -> Response[Any] | None:
    if approval is not None and not APPROVAL.match(approval):
        known = ", ".join(APPROVAL_STATUSES)
        return control_error(422, f"approval must be a lowercase word such as {known}", field="approval")
    if category is not None and not CATEGORY.match(category):
        known = ", ".join(CATEGORIES)
        return control_error(422, f"category must be an uppercase word such as {known}", field="category")
    return None


@post("/_emulator/twilio/templates", include_in_schema=False)
async def create_template(request: Request[Any, Any, Any], emu: EmulatorState) -> Response[Any]:
    data = await _decode(request, schemas.TemplateCreate)
    if isinstance(data, Response):
        return data
    if data.account_sid not in emu.accounts:
        return control_error(404, f"no account {data.account_sid}")
    if len(set(data.variables)) != len(data.variables) or not all(VARIABLE.match(v) for v in data.variables):
        return control_error(422, "variables must be unique names of letters, digits or _", field="variables")
    content_sid = data.content_sid or sid("HX")
    if not CONTENT_SID.match(content_sid):
        return control_error(422, "content_sid must match ^HX[0-9a-fA-F]{32}$", field="content_sid")
    if content_sid in emu.templates:
        return control_error(409, f"template {content_sid} exists")
    if bad := _bad_review(data.approval, data.category):
        return bad
    if not LANGUAGE.match(data.language):
        return control_error(422, "language must be a code such as en or pt_BR", field="language")
    template = emu.create_template(
        data.account_sid,
        list(data.variables),
        body=data.body,
        content_sid=content_sid,
        approval=data.approval,
        category=data.category,
        language=data.language,
        friendly_name=data.friendly_name,
    )
    return Response(_template_json(template), status_code=201)


@get("/_emulator/twilio/templates/{content_sid:str}", include_in_schema=False)
async def read_template(content_sid: str, emu: EmulatorState) -> Response[Any]:
    template = emu.templates.get(content_sid)
    if template is None:
        return control_error(404, f"no template {content_sid}")
    return Response(_template_json(template), status_code=200)


@patch("/_emulator/twilio/templates/{content_sid:str}", include_in_schema=False)
async def review_template(request: Request[Any, Any, Any], content_sid: str, emu: EmulatorState) -> Response[Any]:
    """Set a template's WhatsApp approval (any status, e.g. paused or disabled), category or rejection reason."""
    template = emu.templates.get(content_sid)
    if template is None:
        return control_error(404, f"no template {content_sid}")
    data = await _decode(request, schemas.TemplatePatch)
    if isinstance(data, Response):
        return data
    if bad := _bad_review(data.approval, data.category):
        return bad
    if data.approval is not None:
        template.approval = data.approval
    if data.category is not None:
        template.category = data.category
    if data.rejection_reason is not None:
        template.rejection_reason = data.rejection_reason[:1000]
    template.date_updated = emu.now()
    return Response(_template_json(template), status_code=200)


def _media_type(url: str, given: str | None) -> str:
    return given or mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"


@post("/_emulator/twilio/inbound", include_in_schema=False)
async def inbound(request: Request[Any, Any, Any], emu: EmulatorState) -> Response[Any]:
    """A WhatsApp user writes in: open the window and POST the signed inbound webhook, synchronously."""
    data = await _decode(request, schemas.Inbound)
    if isinstance(data, Response):
        return data
    account = emu.accounts.get(data.account_sid)
    if account is None:
        return control_error(404, f"no account {data.account_sid}")
    phone = data.from_.removeprefix(PREFIX) if data.from_ else None
    if phone is not None and not E164.match(phone):
        return control_error(422, "from must be an E.164 number", field="from")
    if data.bsuid is not None and not BSUID.match(data.bsuid):
        return control_error(422, "bsuid must look like US.13491208655302741918", field="bsuid")
    if data.hide_phone and not data.bsuid:
        return control_error(422, "hide_phone needs a bsuid", field="hide_phone")
    if phone is None and not data.hide_phone:
        return control_error(422, "from is required unless hide_phone is true", field="from")
    to = data.to or account.whatsapp_from
    if not to.startswith(PREFIX):
        to = PREFIX + to
    if not E164.match(to.removeprefix(PREFIX)):
        return control_error(422, "to must be whatsapp:+E164", field="to")
    if bad := _bad_url(data.media_url, "media_url"):
        return bad
    if not data.body and not data.media_url:
        return control_error(422, "body or media_url is required", field="body")

    identities = [i for i in (phone, data.bsuid) if i]
    for identity in identities:
        emu.open_window(to, identity)
    sender = f"{PREFIX}{data.bsuid}" if data.hide_phone else f"{PREFIX}{phone}"
    if data.prefixless:
        sender = sender.removeprefix(PREFIX)
    profile = data.profile_name or "Emulated User"
    media_type = _media_type(data.media_url, data.media_content_type) if data.media_url else None
    message_type = (
        "text"
        if not media_type
        else (media_type.split("/")[0] if media_type.split("/")[0] in ("image", "video", "audio") else "document")
    )
    context: dict[str, str] = {"ProfileName": profile}
    if not data.hide_phone:
        context["WaId"] = phone.lstrip("+")  # type: ignore[union-attr]
    now = emu.now()
    message = Message(
        sid=sid("MM" if data.media_url else "SM"),
        account_sid=account.sid,
        to=to,
        from_=sender,
        messaging_service_sid=account.messaging_service_sid,
        body=data.body,
        media_urls=[data.media_url] if data.media_url else [],
        direction="inbound",
        status="received",
        date_created=now,
        date_updated=now,
        date_sent=now,
        outcome="received",
    )
    params = [
        ("SmsMessageSid", message.sid),
        ("NumMedia", str(len(message.media_urls))),
        ("ProfileName", profile),
        ("MessageType", message_type),
        ("SmsSid", message.sid),
    ]
    if not data.hide_phone:
        params.append(("WaId", context["WaId"]))
    params += [
        ("SmsStatus", "received"),
        ("Body", data.body),
        ("To", to),
        ("NumSegments", "1"),
        ("ReferralNumMedia", "0"),
        ("MessageSid", message.sid),
        ("AccountSid", account.sid),
        ("MessagingServiceSid", account.messaging_service_sid),
        ("From", sender),
        ("ApiVersion", "2010-04-01"),
        ("ChannelMetadata", json.dumps({"type": "whatsapp", "data": {"context": context}}, separators=(",", ":"))),
    ]
    if data.bsuid:
        params.append(("ExternalUserId", f"{PREFIX}{data.bsuid}"))
    if data.media_url:
        params += [("MediaUrl0", data.media_url), ("MediaContentType0", media_type or "image/jpeg")]
    message.request = params
    emu.messages[message.sid] = message
    webhook = None
    if account.inbound_url:
        delivery = Delivery(kind="inbound", url=account.inbound_url, params=params)
        message.callbacks.append(delivery)
        await deliver_twilio(client_for_loop(), emu, delivery, account.auth_token)
        webhook = delivery.to_dict()
    return Response(
        {"message_sid": message.sid, "opened_windows": [[to, i] for i in identities], "webhook": webhook},
        status_code=200,
    )


def _to_matches(address: str, wanted: str | None) -> bool:
    return not wanted or wanted in (address, address.removeprefix(PREFIX))


@get("/_emulator/twilio/messages", include_in_schema=False)
async def twilio_messages(emu: EmulatorState, account_sid: str | None = None, to: str | None = None) -> Response[Any]:
    found = [
        m.record()
        for m in emu.messages.values()
        if (not account_sid or m.account_sid == account_sid) and _to_matches(m.to, to)
    ]
    return Response({"messages": found}, status_code=200)


@get("/_emulator/twilio/messages/{message_sid:str}", include_in_schema=False)
async def twilio_message(message_sid: str, emu: EmulatorState) -> Response[Any]:
    message = emu.messages.get(message_sid)
    if message is None:
        return control_error(404, f"no message {message_sid}")
    return Response(message.record(), status_code=200)


def _key_json(key: Any) -> dict[str, Any]:
    return {
        "api_key": key.api_key,
        "event_webhook_public_key": key.public_key_b64,
        "event_webhook_url": key.event_webhook_url,
    }


@post("/_emulator/sendgrid/keys", include_in_schema=False, cache_control=NO_STORE)
async def create_sendgrid_key(request: Request[Any, Any, Any], emu: EmulatorState) -> Response[Any]:
    data = await _decode(request, schemas.SendgridKeyCreate)
    if isinstance(data, Response):
        return data
    if bad := _bad_url(data.event_webhook_url, "event_webhook_url"):
        return bad
    return Response(_key_json(emu.create_sendgrid_key(data.event_webhook_url)), status_code=201)


@patch("/_emulator/sendgrid/keys/{api_key:str}", include_in_schema=False, cache_control=NO_STORE)
async def update_sendgrid_key(request: Request[Any, Any, Any], api_key: str, emu: EmulatorState) -> Response[Any]:
    key = emu.sendgrid_keys.get(api_key)
    if key is None:
        return control_error(404, "no such SendGrid key")
    data = await _decode(request, schemas.SendgridKeyPatch)
    if isinstance(data, Response):
        return data
    if bad := _bad_url(data.event_webhook_url, "event_webhook_url"):
        return bad
    key.event_webhook_url = data.event_webhook_url
    return Response(_key_json(key), status_code=200)


@get("/_emulator/sendgrid/messages", include_in_schema=False)
async def sendgrid_messages(emu: EmulatorState, api_key: str | None = None, to: str | None = None) -> Response[Any]:
    found = [m.record() for m in emu.mails.values() if not api_key or m.api_key == api_key]
    if to:
        found = [m for m in found if to.lower() in (r.lower() for r in m["recipients"] if r)]
    return Response({"messages": found}, status_code=200)


@post("/_emulator/clock", include_in_schema=False)
async def clock(request: Request[Any, Any, Any], emu: EmulatorState) -> Response[Any]:
    data = await _decode(request, schemas.Clock)
    if isinstance(data, Response):
        return data
    if not 0 <= data.advance_seconds <= 10 * 365 * 86400:
        return control_error(422, "advance_seconds must be between 0 and ten years", field="advance_seconds")
    emu.advance(data.advance_seconds)
    return Response({"now": emu.now(), "offset_seconds": emu.clock_offset}, status_code=200)


def _status(emu: EmulatorState) -> dict[str, Any]:
    return {
        "now": emu.now(),
        "offset_seconds": emu.clock_offset,
        "pending_tasks": emu.pending,
        "config": {name: getattr(emu, name) for name in schemas.Config.__struct_fields__},
    }


@get("/_emulator/status", include_in_schema=False)
async def status(emu: EmulatorState) -> Response[Any]:
    return Response(_status(emu), status_code=200)


@post("/_emulator/config", include_in_schema=False)
async def configure(request: Request[Any, Any, Any], emu: EmulatorState) -> Response[Any]:
    data = await _decode(request, schemas.Config)
    if isinstance(data, Response):
        return data
    changes = {k: getattr(data, k) for k in data.__struct_fields__ if getattr(data, k) is not None}
    if any(not isinstance(v, bool) and not 0 <= v <= 3600 for v in changes.values()):
        return control_error(422, "every setting is a number of seconds between 0 and 3600")
    for name, value in changes.items():
        setattr(emu, name, value)
    return Response(_status(emu), status_code=200)


@post("/_emulator/reset", include_in_schema=False)
async def reset(emu: EmulatorState) -> Response[Any]:
    emu.reset()
    return Response({"reset": True}, status_code=200)


HANDLERS = [
    create_account,
    update_account,
    set_limits,
    read_limits,
    create_template,
    read_template,
    review_template,
    inbound,
    twilio_messages,
    twilio_message,
    create_sendgrid_key,
    update_sendgrid_key,
    sendgrid_messages,
    clock,
    status,
    configure,
    reset,
]
