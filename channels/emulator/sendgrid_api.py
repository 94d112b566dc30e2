"""The SendGrid side: POST /v3/mail/send and GET /v3/scopes, then signed Event Webhook batches."""

from __future__ import annotations

import hmac
import json
import re
import secrets
from typing import Any

from litestar import Request, Response, get, post

from channels.emulator.callbacks import post_event_batches
from channels.emulator.errors import SENDGRID_UNAUTHORIZED, sendgrid_errors
from channels.emulator.magic import sendgrid_events_for
from channels.emulator.state import EmulatorState, Mail, SendgridKey

EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
TEMPLATE_ID = re.compile(
    r"^(d-[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})$"
)  # dynamic or legacy
HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message."
RESERVED = {
    "email",
    "timestamp",
    "event",
    "sg_event_id",
    "sg_message_id",
    "smtp-id",
    "category",
    "reason",
    "status",
    "type",
    "response",
    "attempt",
    "ip",
    "tls",
    "url",
    "useragent",
    "asm_group_id",
    "sg_template_id",
}


def _key(request: Request[Any, Any, Any], emu: EmulatorState) -> SendgridKey | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    for api_key, key in emu.sendgrid_keys.items():
        if hmac.compare_digest(api_key.encode(), token.strip().encode()):
            return key
    return None


def _error(field: str | None, message: str, anchor: str | None = None) -> dict[str, Any]:
    return {"message": message, "field": field, "help": HELP + anchor if anchor else None}


def _address_errors(value: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(value, dict) or not isinstance(value.get("email"), str) or not EMAIL.match(value["email"]):
        return [_error(f"{field}.email", "Does not contain a valid address.", "personalizations.to")]
    return []


def _string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def validate(payload: Any) -> list[dict[str, Any]]:
    """The request-shape checks of v3 mail send, with SendGrid's field paths and messages."""
    if not isinstance(payload, dict):
        return [_error(None, "Bad Request")]
    errors: list[dict[str, Any]] = []
    sender = payload.get("from")
    if not isinstance(sender, dict) or "email" not in sender:
        errors.append(
            _error(
                "from.email",
                "The from object must be provided for every email send. It is an object "
                "that requires the email parameter, but may also contain a name parameter.",
                "from",
            )
        )
    elif not isinstance(sender["email"], str) or not EMAIL.match(sender["email"]):
        errors.append(_error("from.email", "The from email does not contain a valid address.", "from"))
    template_id = payload.get("template_id")
    if template_id is not None and (not isinstance(template_id, str) or not TEMPLATE_ID.match(template_id)):
        errors.append(
            _error("template_id", f"The template_id must be a valid GUID, you provided '{template_id}'.", "template_id")
        )
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(
            _error(
                "personalizations",
                "The personalizations field is required and must have at least one personalization.",
                "personalizations",
            )
        )
        personalizations = []
    for i, p in enumerate(personalizations):
        if not isinstance(p, dict):
            errors.append(_error(f"personalizations.{i}", "Bad personalization.", "personalizations"))
            continue
        to = p.get("to")
        if not isinstance(to, list) or not to:
            errors.append(
                _error(
                    f"personalizations.{i}.to",
                    "The to array is required for all personalization "
                    "objects, and must have at least one email object with a valid email address.",
                    "personalizations.to",
                )
            )
        for kind in ("to", "cc", "bcc"):
            addresses = p.get(kind) or []
            if not isinstance(addresses, list):
                if kind != "to":  # a bad "to" is reported above
                    errors.append(
                        _error(
                            f"personalizations.{i}.{kind}",
                            f"The {kind} field must be an array.",
                            f"personalizations.{kind}",
                        )
                    )
                continue
            for j, address in enumerate(addresses):
                errors += _address_errors(address, f"personalizations.{i}.{kind}.{j}")
        if "custom_args" in p and not _string_map(p["custom_args"]):
            errors.append(
                _error(
                    f"personalizations.{i}.custom_args",
                    "Custom args must be a map of strings to strings.",
                    "personalizations.custom_args",
                )
            )
    if "custom_args" in payload and not _string_map(payload["custom_args"]):
        errors.append(_error("custom_args", "Custom args must be a map of strings to strings.", "custom_args"))
    if template_id is None:
        content = payload.get("content")
        if not isinstance(content, list) or not content:
            errors.append(
                _error(
                    "content",
                    "Unless a valid template_id is provided, the content parameter is "
                    "required. There must be at least one defined content block. We typically suggest "
                    "both text/plain and text/html blocks are included, but only one block is required.",
                    "content",
                )
            )
        else:
            for i, block in enumerate(content):
                for part in ("type", "value"):
                    if not isinstance(block, dict) or not isinstance(block.get(part), str) or not block[part]:
                        errors.append(_error(f"content.{i}.{part}", f"The content {part} is required.", "content"))
        every_has_subject = personalizations and all(isinstance(p, dict) and p.get("subject") for p in personalizations)
        if not payload.get("subject") and not every_has_subject:
            errors.append(
                _error(
                    "subject",
                    "The subject is required. You can get around this requirement if you use "
                    "a template with a subject defined or if every personalization has a subject "
                    "defined.",
                    "subject",
                )
            )
    categories = payload.get("categories")
    if categories is not None and (
        not isinstance(categories, list) or len(categories) > 10 or not all(isinstance(c, str) for c in categories)
    ):
        errors.append(_error("categories", "Categories must be a list of at most 10 strings.", "categories"))
    return errors


_DETAIL: dict[str, dict[str, Any]] = {
    "delivered": {"response": "250 2.0.0 OK", "ip": "127.0.0.1", "tls": 1},
    "bounce": {
        "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
        "status": "5.1.1",
        "type": "bounce",
        "bounce_classification": "Invalid Address",
    },
    "blocked": {
        "event": "bounce",
        "reason": "550 5.7.1 Message rejected due to local policy",
        "status": "5.7.1",
        "type": "blocked",
        "bounce_classification": "Reputation",
    },
    "dropped": {"reason": "Bounced Address"},
    "deferred": {"response": "451 4.7.1 Temporarily deferred, try again later", "attempt": "1"},
}


def build_batches(mail: Mail, now: int) -> list[list[dict[str, Any]]]:
    """One event list per recipient; batch k carries every recipient's k-th event (processed, then delivered...)."""
    payload = mail.request
    batches: list[list[dict[str, Any]]] = []
    categories = payload.get("categories")
    n = 0
    for p in payload["personalizations"]:
        custom = {**(payload.get("custom_args") or {}), **(p.get("custom_args") or {})}
        for kind in ("to", "cc", "bcc"):
            for address in p.get(kind) or []:
                n += 1
                message_id = f"{mail.message_id}.filterdrecv-emu-{secrets.token_hex(5)}-{n}-{now:X}-{n}.0"
                for step, name in enumerate(sendgrid_events_for(address["email"])):
                    event: dict[str, Any] = {
                        "email": address["email"],
                        "timestamp": now + step,
                        "event": name,
                        "sg_event_id": secrets.token_urlsafe(16),
                        "sg_message_id": message_id,
                        "smtp-id": f"<{mail.message_id}@ismtpd0001p1iad2.sendgrid.net>",
                    }
                    event.update(_DETAIL.get(name, {}))
                    if categories:
                        event["category"] = categories if len(categories) > 1 else categories[0]
                    if payload.get("template_id"):
                        event["sg_template_id"] = payload["template_id"]
                    event.update({k: v for k, v in custom.items() if k not in RESERVED})
                    while len(batches) <= step:
                        batches.append([])
                    batches[step].append(event)
    return batches


@post("/v3/mail/send", include_in_schema=False)
async def mail_send(request: Request[Any, Any, Any], emu: EmulatorState) -> Response[Any]:
    key = _key(request, emu)
    if key is None:
        return sendgrid_errors(401, SENDGRID_UNAUTHORIZED)
    try:
        payload = json.loads(await request.body())
    except ValueError:
        return sendgrid_errors(400, [_error(None, "Bad Request")])
    if errors := validate(payload):
        return sendgrid_errors(400, errors)
    mail = Mail(message_id=secrets.token_urlsafe(16)[:22], api_key=key.api_key, request=payload, date_created=emu.now())
    emu.mails[mail.message_id] = mail
    batches = build_batches(mail, int(emu.now()))
    mail.events = [event for batch in batches for event in batch]
    emu.spawn(post_event_batches(emu, key, mail.deliveries, batches))
    return Response(content=b"", status_code=202, headers={"X-Message-Id": mail.message_id})


@get("/v3/scopes", include_in_schema=False)
async def scopes(request: Request[Any, Any, Any], emu: EmulatorState) -> Response[Any]:
    if _key(request, emu) is None:
        return sendgrid_errors(401, SENDGRID_UNAUTHORIZED)
    return Response({"scopes": ["mail.send", "user.webhooks.event.settings.read"]}, status_code=200)


HANDLERS = [mail_send, scopes]
