"""The Content API side (content.twilio.com): GET /v1/ContentAndApprovals, as the official SDK calls it.

The account is the one the Basic credentials name (an AccountSid with its auth token, or an API key SID
with its secret): only its own templates are listed, never another account's. Pages follow the spec's
`meta` (page, page_size, first_page_url, previous_page_url, next_page_url, url, key) with absolute
https://content.twilio.com URLs, as Twilio answers; the gateway's Twilio client sends every *.twilio.com
URL to the emulator.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get

from channels.emulator.errors import twilio_error
from channels.emulator.state import Account, EmulatorState

CONTENT_BASE = "https://content.twilio.com"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def authenticate_any(request: Request[Any, Any, Any], emu: EmulatorState) -> Account | Response[Any]:
    """HTTP Basic with an AccountSid + auth token, or an API key SID + secret (no account in the path)."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return twilio_error(20003, 401)
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return twilio_error(20003, 401)
    account = emu.accounts.get(user)
    if account is not None and hmac.compare_digest(password.encode(), account.auth_token.encode()):
        return account
    owner = emu.accounts.get(emu.api_keys.get(user, ""))
    if owner is not None and hmac.compare_digest(password.encode(), owner.api_key_secret.encode()):
        return owner
    return twilio_error(20003, 401)


@get("/v1/ContentAndApprovals", include_in_schema=False)
async def content_and_approvals(request: Request[Any, Any, Any], emu: EmulatorState) -> Response[Any]:
    account = authenticate_any(request, emu)
    if isinstance(account, Response):
        return account
    query = request.query_params
    try:
        page_size = int(query.get("PageSize", DEFAULT_PAGE_SIZE))
        page = int(query.get("Page", 0))
    except ValueError:
        return twilio_error(20001, 400, name="PageSize/Page")
    if not 1 <= page_size <= MAX_PAGE_SIZE or page < 0:
        return twilio_error(20001, 400, name="PageSize" if page >= 0 else "Page")
    own = [t for t in emu.templates.values() if t.account_sid == account.sid]
    start = page * page_size
    chunk = own[start : start + page_size]

    def url(number: int, token: str | None = None) -> str:
        params: dict[str, Any] = {"PageSize": page_size, "Page": number}
        if token:
            params["PageToken"] = token
        return f"{CONTENT_BASE}/v1/ContentAndApprovals?{urlencode(params)}"

    has_next = start + page_size < len(own)
    return Response(
        {
            "contents": [t.content_and_approvals() for t in chunk],
            "meta": {
                "page": page,
                "page_size": page_size,
                "first_page_url": url(0),
                "previous_page_url": url(page - 1, "PB" + chunk[0].content_sid) if page > 0 and chunk else None,
                "url": url(page),
                "next_page_url": url(page + 1, "PA" + chunk[-1].content_sid) if has_next and chunk else None,
                "key": "contents",
            },
        },
        status_code=200,
    )


HANDLERS = [content_and_approvals]
