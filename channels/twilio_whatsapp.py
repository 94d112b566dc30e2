"""WhatsApp through Twilio Programmable Messaging, with the official SDK's async client.

The SDK's AsyncTwilioHttpClient is replaced by a subclass (FACTS §2.2) because the stock one
  * ignores its timeout (aiohttp then waits forever),
  * can only be pointed at an emulator one domain at a time, and TWILIO_EDGE/TWILIO_REGION then
    mangle the overridden host,
  * hides response headers from the exception it raises (we need Retry-After).
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import re
import time
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from channels.base import ChannelError, FailureClass, SendResult, TwilioCredentials, WhatsAppMessage
from channels.errors import classify_twilio
from channels.media import MediaGuard

WHATSAPP_PREFIX = "whatsapp:"
_SDK_PREFIX = re.compile(r"^Unable to \w+ record: ")  # what the SDK puts before Twilio's message

# The response of the SDK call running in this task: the SDK raises TwilioRestException without
# headers, and parses bodies into objects without keeping the JSON. A ContextVar (not an attribute
# of the shared http client) keeps concurrent sends from seeing each other's responses.
_last_response: ContextVar[dict[str, Any] | None] = ContextVar("twilio_last_response", default=None)


def whatsapp_address(address: str) -> str:
    """`whatsapp:<address>`, never doubled (`whatsapp:` in any case is normalised)."""
    address = address.strip()
    if address[: len(WHATSAPP_PREFIX)].lower() == WHATSAPP_PREFIX:
        address = address[len(WHATSAPP_PREFIX):].strip()
    return WHATSAPP_PREFIX + address


def _is_twilio_host(host: str) -> bool:
    host = host.lower()
    return host == "twilio.com" or host.endswith(".twilio.com")


class PooledTwilioHttpClient(AsyncTwilioHttpClient):
    """One pooled aiohttp session per event loop, shared by every tenant's Client.

    Sharing is safe because the SDK passes auth per request, and the cookie jar is disabled so
    nothing one tenant's response sets can ride along on another tenant's request.
    """

    def __init__(self, *, timeout: float, base_url: str | None = None, pool_size: int = 100) -> None:
        super().__init__(pool_connections=False, timeout=timeout)  # no stock session: ours below
        self._client_timeout = aiohttp.ClientTimeout(total=timeout)
        self._base = urlsplit(base_url.rstrip("/")) if base_url else None
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=pool_size),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=self._client_timeout,
        )

    def rewrite(self, url: str) -> str:
        """Every *.twilio.com URL (api, content, messaging, edge/region variants) goes to the
        override, keeping path and query; other URLs are left alone."""
        if self._base is None:
            return url
        parts = urlsplit(url)
        if not _is_twilio_host(parts.hostname or ""):
            return url
        return urlunsplit((self._base.scheme, self._base.netloc, self._base.path + parts.path,
                           parts.query, ""))

    async def request(self, method: str, url: str, params: Mapping[str, object] | None = None,
                      data: Mapping[str, object] | None = None, headers: Mapping[str, str] | None = None,
                      auth: tuple[str, str] | None = None, timeout: float | None = None,
                      allow_redirects: bool = False) -> Response:
        headers = dict(headers or {})
        if auth is not None:
            # Built here rather than with aiohttp.BasicAuth, whose `auth=` parameter is deprecated
            # and goes away in aiohttp 4.
            headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        client_timeout = aiohttp.ClientTimeout(total=timeout) if timeout else self._client_timeout
        async with self.session.request(method.upper(), self.rewrite(url), params=params, data=data,
                                        headers=headers, timeout=client_timeout,
                                        allow_redirects=allow_redirects) as raw:
            text = await raw.text()
        response = Response(raw.status, text, raw.headers)
        captured = _last_response.get()
        if captured is not None:
            captured.update(status=raw.status, headers=raw.headers, text=text)
        return response


@dataclass
class _LoopClients:
    http: PooledTwilioHttpClient
    clients: OrderedDict[tuple[str, int], tuple[tuple[str, ...], Client]] = field(default_factory=OrderedDict)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = (headers or {}).get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class TwilioWhatsApp:
    """send / fetch_message / verify_account for one Twilio deployment (or the emulator).

    `base_url` (NOTIFYGW_TWILIO_API_BASE_URL) redirects every Twilio host; `timeout` bounds each
    HTTP call. `media_guard`, when given, vets a media message's URL before Twilio sees it.
    """

    def __init__(self, *, base_url: str | None = None, timeout: float = 10.0, pool_size: int = 100,
                 media_guard: MediaGuard | None = None, max_cached_clients: int = 1024) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.base_url = base_url or None
        self.timeout = timeout
        self._pool_size = pool_size
        self._media_guard = media_guard
        self._max_cached = max_cached_clients
        # aiohttp sessions are bound to the loop that made them, so everything is kept per loop.
        self._loops: dict[asyncio.AbstractEventLoop, _LoopClients] = {}

    # -- clients -------------------------------------------------------------------------
    def _loop_clients(self) -> _LoopClients:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            for old in [lp for lp in self._loops if lp.is_closed()]:
                del self._loops[old]
            state = self._loops[loop] = _LoopClients(
                PooledTwilioHttpClient(timeout=self.timeout, base_url=self.base_url, pool_size=self._pool_size))
        return state

    def client(self, creds: TwilioCredentials) -> Client:
        """The cached SDK Client for these credentials on the running loop."""
        if not creds.account_sid or not (creds.auth_token or (creds.api_key_sid and creds.api_key_secret)):
            # Never let the SDK fall back to TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN from the environment.
            raise ChannelError(FailureClass.BAD_CREDENTIALS, "Twilio credentials are incomplete")
        state = self._loop_clients()
        key = (creds.account_sid, creds.version)
        secret_parts = (creds.auth_token, creds.api_key_sid or "", creds.api_key_secret or "")
        cached = state.clients.get(key)
        if cached is not None and cached[0] == secret_parts:
            state.clients.move_to_end(key)
            return cached[1]
        for stale in [k for k in state.clients if k[0] == creds.account_sid]:
            del state.clients[stale]  # a newer credential version replaces the old one
        if creds.api_key_sid and creds.api_key_secret:
            client = Client(creds.api_key_sid, creds.api_key_secret, creds.account_sid, http_client=state.http)
        else:
            client = Client(creds.account_sid, creds.auth_token, http_client=state.http)
        if self.base_url:
            # With an override the SDK's edge/region host rewriting must not run (FACTS §2.1:
            # TWILIO_REGION turns 127.0.0.1 into 127.ie1.0.1).
            client.edge = None
            client.region = None
        state.clients[key] = (secret_parts, client)
        while len(state.clients) > self._max_cached:
            state.clients.popitem(last=False)
        return client

    async def aclose(self) -> None:
        """Close the pooled session of the running loop."""
        state = self._loops.pop(asyncio.get_running_loop(), None)
        if state is not None:
            await state.http.close()

    # -- calls ---------------------------------------------------------------------------
    async def _call(self, call: Callable[[], Awaitable[Any]]) -> tuple[Any, dict[str, Any]]:
        captured: dict[str, Any] = {}
        token = _last_response.set(captured)
        try:
            result = await call()
        except TwilioRestException as exc:
            raise self._error(exc.code, exc.status, exc.msg, captured) from exc
        except TwilioServiceException as exc:
            raise self._error(exc.code, exc.status, exc.title, captured) from exc
        except TimeoutError as exc:
            raise ChannelError(FailureClass.TRANSIENT, f"Twilio did not answer within {self.timeout:g}s") from exc
        except aiohttp.ClientError as exc:
            raise ChannelError(FailureClass.TRANSIENT, f"could not reach Twilio ({exc.__class__.__name__})") from exc
        except ValueError as exc:  # a 2xx whose body is not JSON (a proxy page, a truncated reply)
            raise ChannelError(FailureClass.TRANSIENT, "unreadable answer from Twilio",
                               http_status=captured.get("status")) from exc
        finally:
            _last_response.reset(token)
        try:
            raw = json.loads(captured.get("text") or "{}")
        except ValueError:
            raw = {}
        return result, raw if isinstance(raw, dict) else {}

    @staticmethod
    def _error(code: Any, status: int | None, text: str, captured: Mapping[str, Any]) -> ChannelError:
        failure = classify_twilio(code, status)
        retry_after = _retry_after(captured.get("headers")) if failure is FailureClass.RATE_LIMITED else None
        message = _SDK_PREFIX.sub("", text or "") or f"HTTP {status}"
        return ChannelError(failure, message, code=None if code is None else str(code),
                            http_status=status, retry_after=retry_after)

    async def send(self, creds: TwilioCredentials, message: WhatsAppMessage) -> SendResult:
        """Create the Message. Raises ValueError for a malformed WhatsAppMessage (a caller bug),
        ChannelError for everything the provider (or the media guard) refuses."""
        kwargs = create_kwargs(message)
        if message.kind == "media" and self._media_guard is not None:
            await self._media_guard.check(message.media_url or "")
        client = self.client(creds)
        instance, raw = await self._call(lambda: client.messages.create_async(**kwargs))
        return SendResult(provider_message_id=instance.sid, status=instance.status or "queued",
                          raw=raw or {"sid": instance.sid, "status": instance.status})

    async def fetch_message(self, creds: TwilioCredentials, sid: str) -> SendResult:
        """The Message as Twilio has it now (for a reconciler): status, and in `raw` the
        error_code/error_message a lost callback would have carried."""
        client = self.client(creds)
        instance, raw = await self._call(lambda: client.messages(sid).fetch_async())
        return SendResult(provider_message_id=instance.sid or sid, status=instance.status or "",
                          raw=raw or {"sid": instance.sid, "status": instance.status,
                                      "error_code": instance.error_code})

    async def verify_account(self, creds: TwilioCredentials) -> dict[str, Any]:
        """GET /2010-04-01/Accounts/{Sid}.json: bad_credentials when Twilio refuses them or the
        account is not active, transient when Twilio cannot be reached."""
        client = self.client(creds)
        try:
            instance, raw = await self._call(lambda: client.api.v2010.accounts(creds.account_sid).fetch_async())
        except ChannelError as exc:
            if exc.http_status in (401, 403, 404):
                raise ChannelError(FailureClass.BAD_CREDENTIALS, exc.message, code=exc.code,
                                   http_status=exc.http_status) from exc
            raise
        if instance.status not in (None, "active"):
            raise ChannelError(FailureClass.BAD_CREDENTIALS, f"Twilio account is {instance.status}")
        return raw or {"sid": instance.sid, "friendly_name": instance.friendly_name, "status": instance.status}


def create_kwargs(message: WhatsAppMessage) -> dict[str, Any]:
    """The create_async arguments for one of the three kinds of WhatsApp message."""
    kwargs: dict[str, Any] = {"to": whatsapp_address(message.to)}
    if message.messaging_service_sid:
        kwargs["messaging_service_sid"] = message.messaging_service_sid
    elif message.from_:
        kwargs["from_"] = whatsapp_address(message.from_)
    else:
        raise ValueError("a WhatsApp message needs messaging_service_sid or from_")
    if message.status_callback:
        kwargs["status_callback"] = message.status_callback

    if message.kind == "session":
        if not message.body:
            raise ValueError("a session message needs a body")
        _forbid(message, "media_url", "content_sid", "content_variables")
        kwargs["body"] = message.body
    elif message.kind == "media":
        if not message.media_url:
            raise ValueError("a media message needs a media_url")
        _forbid(message, "content_sid", "content_variables")
        kwargs["media_url"] = [message.media_url]
        if message.body:
            kwargs["body"] = message.body
    elif message.kind == "template":
        if not message.content_sid:
            raise ValueError("a template message needs a content_sid")
        # Since April 2025 a Body or MediaUrl next to a ContentSid makes WhatsApp fail with 63016.
        _forbid(message, "body", "media_url")
        if message.content_variables:
            kwargs["content_variables"] = content_variables_json(message.content_variables)
        kwargs["content_sid"] = message.content_sid
    else:
        raise ValueError(f"unknown WhatsApp message kind {message.kind!r}")
    return kwargs


def content_variables_json(variables: Mapping[Any, Any]) -> str:
    """ContentVariables is a JSON *string* of string keys to string values ({"1": "Ava"})."""
    for key, value in variables.items():
        if value is None:
            raise ValueError(f"content variable {key!r} has no value")
    return json.dumps({str(k): str(v) for k, v in variables.items()}, ensure_ascii=False, separators=(",", ":"))


def _forbid(message: WhatsAppMessage, *names: str) -> None:
    present = [n for n in names if getattr(message, n)]
    if present:
        raise ValueError(f"a {message.kind} message must not set {', '.join(present)}")
