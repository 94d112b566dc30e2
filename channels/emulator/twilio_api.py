"""The Twilio side: /2010-04-01/Accounts/{Sid}.json and the Messages resource, as the official SDK calls them."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import re
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from litestar import Request, Response, get, post
from litestar.datastructures import FormMultiDict

from channels.emulator.callbacks import run_lifecycle
from channels.emulator.errors import twilio_error
from channels.emulator.magic import TWILIO_MAGIC
from channels.emulator.state import API_VERSION, Account, EmulatorState, Message, Template, rfc2822, sid

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
BSUID = re.compile(r"^[A-Z]{2}(\.ENT)?\.[A-Za-z0-9]{1,128}$")
CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
PREFIX = "whatsapp:"
BASE = f"/{API_VERSION}/Accounts"
REQUEST_ID_HEADER = "Twilio-Request-Id"


def request_id() -> str:
    """A Twilio-shaped request id: RQ and 32 lowercase hex digits."""
    return sid("RQ")


def with_request_id(response: Response[Any], rid: str) -> Response[Any]:
    """Twilio answers every API request, refused ones too, with its id in `Twilio-Request-Id`."""
    response.headers[REQUEST_ID_HEADER] = rid
    return response


def authenticate(request: Request[Any, Any, Any], emu: EmulatorState, account_sid: str) -> Account | Response[Any]:
    """HTTP Basic with AccountSid + auth token, or API key SID + secret; the key must belong to the path's account."""
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    account = emu.accounts.get(account_sid)
    if scheme.lower() != "basic" or account is None:
        return twilio_error(20003, 401)
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return twilio_error(20003, 401)
    if user == account.sid and hmac.compare_digest(password.encode(), account.auth_token.encode()):
        return account
    if user == account.api_key_sid and hmac.compare_digest(password.encode(), account.api_key_secret.encode()):
        return account
    return twilio_error(20003, 401)


def account_json(emu: EmulatorState, account: Account) -> dict[str, Any]:
    uri = f"{BASE}/{account.sid}.json"
    subresources = {
        key: f"{BASE}/{account.sid}/{name}.json"
        for key, name in (
            ("messages", "Messages"),
            ("keys", "Keys"),
            ("incoming_phone_numbers", "IncomingPhoneNumbers"),
        )
    }
    return {
        "auth_token": account.auth_token,
        "date_created": rfc2822(account.date_created),
        "date_updated": rfc2822(account.date_created),
        "friendly_name": account.friendly_name,
        "owner_account_sid": emu.parent_account_sid,
        "sid": account.sid,
        "status": "active",
        "subresource_uris": subresources,
        "type": "Full",
        "uri": uri,
    }


@get("/2010-04-01/Accounts/{resource:str}", include_in_schema=False)
async def fetch_account(request: Request[Any, Any, Any], resource: str, emu: EmulatorState) -> Response[Any]:
    if not resource.endswith(".json"):
        return twilio_error(20404, 404, path=request.url.path)
    account = authenticate(request, emu, resource.removesuffix(".json"))
    if isinstance(account, Response):
        return account
    return Response(account_json(emu, account), status_code=200)


def valid_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "_" not in (parts.hostname or "")


def _content_variables(raw: str | None) -> dict[str, str] | Response[Any] | None:
    if raw is None or raw == "":
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return twilio_error(21656, 400)
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return twilio_error(21656, 400)  # keys and values must be strings: {"1": "Alice"}
    return value


def _render(template: Template, variables: dict[str, str] | None) -> str:
    text = template.body
    for key, value in (variables or {}).items():
        text = text.replace("{{" + key + "}}", value)
    return text


@post("/2010-04-01/Accounts/{account_sid:str}/Messages.json", include_in_schema=False)
async def create_message(request: Request[Any, Any, Any], account_sid: str, emu: EmulatorState) -> Response[Any]:
    rid = request_id()
    return with_request_id(await _create_message(request, account_sid, emu, rid), rid)


async def _create_message(
    request: Request[Any, Any, Any], account_sid: str, emu: EmulatorState, rid: str
) -> Response[Any]:
    account = authenticate(request, emu, account_sid)
    if isinstance(account, Response):
        return account
    form: FormMultiDict = await request.form()

    def one(name: str) -> str | None:
        value = form.get(name)
        return value.strip() or None if isinstance(value, str) else None

    to, from_, service = one("To"), one("From"), one("MessagingServiceSid")
    if not to:
        return twilio_error(21604, 400)
    if service and (not SERVICE_SID.match(service) or service != account.messaging_service_sid):
        return twilio_error(21701, 400, sid=service)
    if not service and not from_:
        return twilio_error(21603, 400)
    if from_ and (not from_.startswith(PREFIX)) != (not to.startswith(PREFIX)):
        return twilio_error(21910, 400)
    if from_ and from_ != account.whatsapp_from:
        return twilio_error(63007, 400)
    if not to.startswith(PREFIX):
        return twilio_error(21910, 400)  # the emulator's senders are WhatsApp-only
    address = to.removeprefix(PREFIX)
    if not (E164.match(address) or (emu.accept_bsuid_to and BSUID.match(address))):
        return twilio_error(21211, 400, to=to)

    raw_body = form.get("Body")
    body = raw_body if isinstance(raw_body, str) else ""
    media = [u.strip() for u in form.getall("MediaUrl", []) if isinstance(u, str) and u.strip()]
    content_sid = one("ContentSid")
    variables = _content_variables(form.get("ContentVariables"))
    if isinstance(variables, Response):
        return variables
    template: Template | None = None
    if content_sid:
        template = emu.templates.get(content_sid) if CONTENT_SID.match(content_sid) else None
        if template is None or template.account_sid != account.sid:
            return twilio_error(21655, 400)
    elif variables is not None:
        return twilio_error(21656, 400)  # ContentVariables needs a ContentSid
    if template is None:
        if not body and not media:
            return twilio_error(21619, 400)
        if len(body) > 1600:
            return twilio_error(21617, 400)
        if len(media) > 10 or not all(valid_url(u) for u in media):
            return twilio_error(21620, 400)
    callback = one("StatusCallback")
    if callback and not valid_url(callback):
        return twilio_error(21609, 400)
    validity = one("ValidityPeriod")
    if validity is not None and not (validity.isdigit() and 1 <= int(validity) <= 36000):
        return twilio_error(20001, 400, name="ValidityPeriod")  # 1..36000 s (CreateMessageRequest)

    magic = TWILIO_MAGIC.get(address)
    if magic and magic.drops:
        fingerprint: tuple[str, ...] = (
            "drop",
            account.sid,
            to,
            content_sid or "",
            json.dumps(variables, sort_keys=True),
            "" if template else body,
            "\n".join(media),
        )
        dropped = emu.fault_counters.get(fingerprint, 0)
        if dropped < magic.drops:
            emu.fault_counters[fingerprint] = dropped + 1
            return await drop_connection(request)
        emu.fault_counters.pop(fingerprint, None)
    if magic and magic.rest_status:
        if not magic.rest_failures:
            return twilio_error(magic.rest_code or 21211, magic.rest_status, to=to)
        # Counted per message: the same account, To and content (ContentSid+variables, or Body+media).
        fingerprint = (
            account.sid,
            to,
            content_sid or "",
            json.dumps(variables, sort_keys=True),
            "" if template else body,
            "\n".join(media),
        )
        failed = emu.fault_counters.get(fingerprint, 0)
        if failed < magic.rest_failures:
            emu.fault_counters[fingerprint] = failed + 1
            return twilio_error(magic.rest_code or 20500, magic.rest_status)
        emu.fault_counters.pop(fingerprint, None)

    if magic and magic.outcome:
        outcome = magic.outcome
    elif magic:
        outcome = "delivered"  # +15005550003/4/5 fault the REST call only; the window is not consulted
    elif template:
        expected = set(template.variables)
        outcome = "delivered" if set(variables or {}) == expected else "failed_63028"
    else:
        outcome = "delivered" if emu.window_open(account.whatsapp_from, address) else "failed_63016"
    if outcome == "delivered" and not magic:
        business_initiated = template is not None and not emu.window_open(account.whatsapp_from, address)
        if not emu.admit(account.whatsapp_from, address, business_initiated):
            outcome = "undelivered_63018"

    now = emu.now()
    message = Message(
        sid=sid("MM" if media and not template else "SM"),
        account_sid=account.sid,
        to=to,
        from_=None if service and not from_ else account.whatsapp_from,
        messaging_service_sid=service,
        body=_render(template, variables) if template else body,
        media_urls=[] if template else media,
        direction="outbound-api",
        status="accepted" if service else "queued",
        date_created=now,
        date_updated=now,
        content_sid=content_sid,
        content_variables=variables,
        status_callback=callback,
        request=[(k, v) for k, v in form.multi_items() if isinstance(v, str)],
        outcome=outcome,
        send_callbacks=magic.callbacks if magic else True,
        validity_period=int(validity) if validity else None,
        request_id=rid,
    )
    emu.messages[message.sid] = message
    created = message.resource()  # the 201 shows the message as created, whatever the callbacks do next
    if magic and magic.slow:
        # The message exists (a Messages list shows it) but its answer is late, and so are its callbacks:
        # none may reach the caller before the 201 it is waiting for.
        emu.responses_held += 1
        try:
            await asyncio.sleep(emu.slow_response_seconds)
        finally:
            emu.responses_held -= 1
        if emu.messages.get(message.sid) is message:  # not forgotten by a reset meanwhile
            emu.spawn(run_lifecycle(emu, message, account))
        return Response(created, status_code=201)
    emu.spawn(run_lifecycle(emu, message, account))
    if emu.response_latency_seconds:
        await asyncio.sleep(emu.response_latency_seconds)
    return Response(created, status_code=201)


def _transport(send: Any, depth: int = 0) -> Any:
    """The server's transport behind an ASGI `send` (uvicorn's cycle keeps it; middleware wraps it in closures)."""
    if send is None or depth > 16:
        return None
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None:
        return transport
    for cell in getattr(send, "__closure__", None) or ():
        try:
            inner = cell.cell_contents
        except ValueError:
            continue
        if callable(inner) and (found := _transport(inner, depth + 1)) is not None:
            return found
    return None


async def drop_connection(request: Request[Any, Any, Any]) -> Response[Any]:
    """Close the connection under a request that was read, without a byte of answer (what a reset looks
    like to the caller). Needs an ASGI server that keeps its transport on the send callable (uvicorn)."""
    transport = _transport(request.send)
    if transport is None:
        raise ConnectionAbortedError("the emulator cannot reach the connection to drop it")
    transport.abort()
    await asyncio.sleep(0)  # let the server see the connection lost, so the answer below goes nowhere
    return Response(None, status_code=500)


@get("/2010-04-01/Accounts/{account_sid:str}/Messages/{resource:str}", include_in_schema=False)
async def fetch_message(
    request: Request[Any, Any, Any], account_sid: str, resource: str, emu: EmulatorState
) -> Response[Any]:
    return with_request_id(_fetch_message(request, account_sid, resource, emu), request_id())


def _fetch_message(
    request: Request[Any, Any, Any], account_sid: str, resource: str, emu: EmulatorState
) -> Response[Any]:
    account = authenticate(request, emu, account_sid)
    if isinstance(account, Response):
        return account
    message = emu.messages.get(resource.removesuffix(".json")) if resource.endswith(".json") else None
    if message is None or message.account_sid != account.sid:
        return twilio_error(20404, 404, path=request.url.path)
    return Response(message.resource(), status_code=200)


def _date_filter(raw: str) -> tuple[date | datetime, bool] | None:
    """A DateSent value: a GMT date (YYYY-MM-DD) or an ISO 8601 date-time; True when it is a date only."""
    try:
        if len(raw) == 10:
            return date.fromisoformat(raw), True
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)), False
    except ValueError:
        return None


def _matches(message: Message, filters: dict[str, str]) -> bool:
    for key in ("To", "From"):
        wanted = filters.get(key)
        actual = message.to if key == "To" else (message.from_ or "")
        if wanted and wanted not in (actual, actual.removeprefix(PREFIX)):
            return False
    for key, op in (("DateSent", "=="), ("DateSent<", "<="), ("DateSent>", ">=")):
        raw = filters.get(key)
        if not raw:
            continue
        if message.date_sent is None:
            return False
        parsed = _date_filter(raw)
        if parsed is None:  # list_messages refuses a malformed filter before it gets here
            return False
        bound, date_only = parsed
        sent = datetime.fromtimestamp(message.date_sent, tz=UTC)
        value: date | datetime = sent.date() if date_only else sent
        if not {"==": value == bound, "<=": value <= bound, ">=": value >= bound}[op]:
            return False
    return True


@get("/2010-04-01/Accounts/{account_sid:str}/Messages.json", include_in_schema=False)
async def list_messages(request: Request[Any, Any, Any], account_sid: str, emu: EmulatorState) -> Response[Any]:
    return with_request_id(_list_messages(request, account_sid, emu), request_id())


def _list_messages(request: Request[Any, Any, Any], account_sid: str, emu: EmulatorState) -> Response[Any]:
    account = authenticate(request, emu, account_sid)
    if isinstance(account, Response):
        return account
    query = request.query_params
    filters = {k: query[k] for k in ("To", "From", "DateSent", "DateSent<", "DateSent>") if query.get(k)}
    for key in ("DateSent", "DateSent<", "DateSent>"):
        if key in filters and _date_filter(filters[key]) is None:
            return twilio_error(20001, 400, name=key)
    try:
        page_size = min(max(int(query.get("PageSize", 50)), 1), 1000)
        page = max(int(query.get("Page", 0)), 0)
    except ValueError:
        return twilio_error(20001, 400, name="PageSize/Page")
    to_magic = TWILIO_MAGIC.get(filters.get("To", "").removeprefix(PREFIX))
    if to_magic and to_magic.list_status:
        return twilio_error(20500, to_magic.list_status)
    found = [m for m in emu.messages.values() if m.account_sid == account.sid and _matches(m, filters)]
    found.reverse()  # newest first, as Twilio lists them
    start = page * page_size
    chunk = found[start : start + page_size]
    path = f"{BASE}/{account.sid}/Messages.json"

    def page_uri(number: int, token: str | None = None) -> str:
        params = {**filters, "PageSize": page_size, "Page": number, **({"PageToken": token} if token else {})}
        return f"{path}?{urlencode(params)}"

    has_next = start + page_size < len(found)
    return Response(
        {
            "end": start + max(len(chunk) - 1, 0),
            "first_page_uri": page_uri(0),
            "messages": [m.resource() for m in chunk],
            "next_page_uri": page_uri(page + 1, "PA" + chunk[-1].sid) if has_next and chunk else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1, "PB" + chunk[0].sid) if page > 0 and chunk else None,
            "start": start,
            "uri": page_uri(page),
        },
        status_code=200,
    )


HANDLERS = [fetch_account, create_message, fetch_message, list_messages]
