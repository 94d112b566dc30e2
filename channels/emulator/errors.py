"""Error bodies in each peer's own shape, and the router's exception handler.

Twilio's 2010 API answers errors in its legacy shape {code, message, more_info, status} (FACTS §3.4);
never RFC 9457 type+title, which the SDK would turn into a different exception class.
Codes marked (unverified) are plausible Twilio codes whose exact text FACTS §8 could not confirm.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

log = logging.getLogger("notifygw.emulator")

TWILIO_MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20001: "Invalid value for {name}",  # (unverified)
    20004: "Method not allowed",
    20404: "The requested resource {path} was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "Invalid 'To' Phone Number: {to}",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21609: "Invalid StatusCallback url",
    21610: "Attempt to send to unsubscribed recipient",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21619: "A text message body or media urls must be specified.",
    21620: "Invalid media URL(s)",
    21655: "The ContentSid is Invalid.",  # (unverified)
    21656: "The ContentVariables Parameter is invalid.",  # (unverified)
    21701: "The Messaging Service Sid {sid} is invalid.",
    21910: "Invalid From and To pair. From and To should be of the same channel",
    63007: "Twilio could not find a Channel with the specified From address",
}

# Texts carried by failed/undelivered callbacks and the Message resource's error_message.
CALLBACK_ERRORS: dict[int, str] = {
    63016: (
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template."
    ),
    30003: "Unreachable destination handset",
    63024: "Invalid message recipient",
    63028: "Number of parameters provided does not match the expected number of parameters",
    63018: "Rate limit exceeded for Channel",
}


def twilio_error(code: int, status: int, **fmt: Any) -> Response[Any]:
    message = TWILIO_MESSAGES.get(code, "Error").format(**fmt)
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None
    return Response(
        {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
        status_code=status,
        headers=headers,
    )


def sendgrid_errors(status: int, errors: list[dict[str, Any]]) -> Response[Any]:
    return Response({"errors": errors}, status_code=status)


SENDGRID_UNAUTHORIZED = [
    {"message": "The provided authorization grant is invalid, expired, or revoked", "field": None, "help": None}
]


def control_error(status: int, message: str, **extra: Any) -> Response[Any]:
    return Response({"error": message, **extra}, status_code=status)


_TWILIO_CODE_FOR_STATUS = {400: 21000, 401: 20003, 404: 20404, 405: 20004, 413: 21000, 429: 20429}


def exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Framework errors (405, malformed bodies, bugs) in the shape of whichever peer was called."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "Internal error"
    if status >= 500:
        log.exception("emulator error on %s %s", request.method, request.url.path, exc_info=exc)
    path = request.url.path
    if path.startswith(("/2010-04-01/", "/v1/")):  # the Messages and the Content API
        code = _TWILIO_CODE_FOR_STATUS.get(status, 20500)
        message = TWILIO_MESSAGES.get(code, detail).format(path=path) if code != 21000 else detail
        return Response(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status_code=status,
        )
    if path.startswith("/v3/"):
        return sendgrid_errors(status, [{"field": None, "message": detail, "help": None}])
    return control_error(status, detail)
