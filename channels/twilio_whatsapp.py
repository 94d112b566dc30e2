"""WhatsApp through Twilio Programmable Messaging, with the official SDK's async client.

The SDK's AsyncTwilioHttpClient is replaced by a subclass (FACTS §2.2) because the stock one
  * ignores its timeout (aiohttp then waits forever),
  * can only be pointed at an emulator one domain at a time, and TWILIO_EDGE/TWILIO_REGION then
    mangle the overridden host,
  * hides response headers from the exception it raises (we need Retry-After and Twilio-Request-Id).

A send reads `Twilio-Request-Id` from the SDK's own `create_with_http_info_async` (its `ApiResponse`
has the headers); a refused request's id comes from the response this client captured, because the
SDK's exceptions carry no headers.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from channels.base import (
    Channel,
    ChannelError,
    FailureClass,
    ListedMessage,
    ListsRecent,
    SendResult,
    TwilioCredentials,
    WhatsAppMessage,
)
from channels.errors import classify_twilio
from channels.media import MediaGuard

WHATSAPP_PREFIX = "whatsapp:"
_SDK_PREFIX = re.compile(r"^Unable to \w+ record: ")  # what the SDK puts before Twilio's message
MAX_VALIDITY_PERIOD = 36000  # CreateMessageRequest.ValidityPeriod: 1..36000 s (FACTS §3.2)
RECENT_LIMIT = 100  # messages read at most when looking for a copy of an ambiguous send
RECENT_PAGE_SIZE = 20
REQUEST_ID_HEADER = "Twilio-Request-Id"

# The response of the SDK call running in this task: the SDK raises TwilioRestException without
# headers, and parses bodies into objects without keeping the JSON. A ContextVar (not an attribute
# of the shared http client) keeps concurrent sends from seeing each other's responses.
_last_response: ContextVar[dict[str, Any] | None] = ContextVar("twilio_last_response", default=None)


def whatsapp_address(address: str) -> str:
    """`whatsapp:<address>`, never doubled (`whatsapp:` in any case is normalised)."""
    address = address.strip()
    if address[: len(WHATSAPP_PREFIX)].lower() == WHATSAPP_PREFIX:
        address = address[len(WHATSAPP_PREFIX) :].strip()
    return WHATSAPP_PREFIX + address


def _may_have_been_sent(exc: aiohttp.ClientError) -> bool:
    """A dropped connection (reset, server disconnected, truncated answer) may come after Twilio
    read the request; only errors raised before anything was written are a certain "not sent"."""
    return not isinstance(exc, (aiohttp.InvalidURL, aiohttp.ClientConnectorError))


def request_id(headers: Mapping[str, str] | None) -> str | None:
    """Twilio's id of one API request (`Twilio-Request-Id`, RQ + 32 hex), whatever the header's case."""
    if not headers:
        return None
    value = headers.get(REQUEST_ID_HEADER)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == REQUEST_ID_HEADER.lower()), None)
    return str(value)[:64] if value else None


def _is_twilio_host(host: str) -> bool:
    host = host.lower()
    return host == "twilio.com" or host.endswith(".twilio.com")


class PooledTwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # the SDK ships no types
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
        return urlunsplit((self._base.scheme, self._base.netloc, self._base.path + parts.path, parts.query, ""))

    async def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        headers = dict(headers or {})
        if auth is not None:
            # Built here rather than with aiohttp.BasicAuth, whose `auth=` parameter is deprecated
            # and goes away in aiohttp 4.
            headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        client_timeout = aiohttp.ClientTimeout(total=timeout) if timeout else self._client_timeout
        async with self.session.request(
            method.upper(),
            self.rewrite(url),
            params=params,
            data=data,
            headers=headers,
            timeout=client_timeout,
            allow_redirects=allow_redirects,
        ) as raw:
            text = await raw.text()
        response = Response(raw.status, text, raw.headers)
        captured = _last_response.get()
        if captured is not None:
            captured.update(status=raw.status, headers=raw.headers, text=text)
        return response


def _more_info(text: str | None) -> str | None:
    """`more_info` of a Twilio error body ({code, message, more_info, status}), when it has one."""
    try:
        body = json.loads(text or "")
    except ValueError:
        return None
    value = body.get("more_info") if isinstance(body, dict) else None
    return str(value)[:512] if value else None


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
    """One Twilio deployment (or the emulator): pooled HTTP, cached SDK clients, and `channel(creds)`.

    `base_url` (NOTIFYGW_TWILIO_API_BASE_URL) redirects every Twilio host; `timeout` bounds each
    HTTP call. `media_guard`, when given, vets a media message's URL before Twilio sees it.
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        timeout: float = 10.0,
        pool_size: int = 100,
        media_guard: MediaGuard | None = None,
        max_cached_clients: int = 1024,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.base_url = base_url or None
        self.timeout = timeout
        self._pool_size = pool_size
        self.media_guard = media_guard
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
                PooledTwilioHttpClient(timeout=self.timeout, base_url=self.base_url, pool_size=self._pool_size)
            )
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
    async def call(self, call: Callable[[], Awaitable[Any]]) -> tuple[Any, dict[str, Any]]:
        """Run one SDK call, every failure turned into a classified ChannelError."""
        captured: dict[str, Any] = {}
        token = _last_response.set(captured)
        try:
            result = await call()
        except TwilioRestException as exc:
            raise self._error(exc.code, exc.status, exc.msg, captured) from exc
        except TwilioServiceException as exc:
            raise self._error(exc.code, exc.status, exc.title, captured) from exc
        except TwilioException as exc:  # a list page answered with an error: ("Unable to fetch page", Response)
            raise self._page_error(exc, captured) from exc
        except aiohttp.ConnectionTimeoutError as exc:  # no connection was made: nothing was sent
            raise ChannelError(FailureClass.TRANSIENT, f"could not connect to Twilio within {self.timeout:g}s") from exc
        except TimeoutError as exc:  # the request went out; Twilio may have carried it out
            raise ChannelError(
                FailureClass.TRANSIENT, f"Twilio did not answer within {self.timeout:g}s", ambiguous=True
            ) from exc
        except aiohttp.ClientConnectorError as exc:  # refused, DNS, TLS handshake: nothing was sent
            raise ChannelError(FailureClass.TRANSIENT, f"could not reach Twilio ({exc.__class__.__name__})") from exc
        except aiohttp.ClientError as exc:  # the connection dropped after the request was written
            raise ChannelError(
                FailureClass.TRANSIENT,
                f"connection to Twilio lost ({exc.__class__.__name__})",
                ambiguous=_may_have_been_sent(exc),
            ) from exc
        except ValueError as exc:  # a 2xx whose body is not JSON (a proxy page, a truncated reply)
            raise ChannelError(
                FailureClass.TRANSIENT,
                "unreadable answer from Twilio",
                http_status=captured.get("status"),
                ambiguous=True,
            ) from exc
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
        headers = captured.get("headers")
        retry_after = _retry_after(headers) if failure is FailureClass.RATE_LIMITED else None
        message = _SDK_PREFIX.sub("", text or "") or f"HTTP {status}"
        return ChannelError(
            failure,
            message,
            code=None if code is None else str(code),
            http_status=status,
            retry_after=retry_after,
            more_info=_more_info(captured.get("text")),
            request_id=request_id(headers),
        )

    @classmethod
    def _page_error(cls, exc: TwilioException, captured: Mapping[str, Any]) -> ChannelError:
        response = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], Response) else None
        status = response.status_code if response is not None else captured.get("status")
        try:
            body = json.loads(response.text) if response is not None else {}
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        return cls._error(body.get("code", status), status, str(body.get("message") or ""), captured)

    def channel(self, creds: TwilioCredentials) -> TwilioChannel:
        """One tenant's Twilio account behind the Channel protocol (channels/base.py)."""
        return TwilioChannel(self, creds)


@dataclass(frozen=True)
class TwilioChannel:
    """send / fetch / recent_messages / verify_credentials for one Twilio account, over its deployment's
    pooled clients. Implements Channel[WhatsAppMessage] and ListsRecent."""

    deployment: TwilioWhatsApp
    creds: TwilioCredentials
    provider: str = "twilio"

    async def send(self, message: WhatsAppMessage) -> SendResult:
        """Create the Message. Raises ValueError for a malformed WhatsAppMessage (a caller bug),
        ChannelError for everything the provider (or the media guard) refuses."""
        kwargs = create_kwargs(message)
        guard = self.deployment.media_guard
        if message.kind == "media" and guard is not None:
            await guard.check(message.media_url or "")
        client = self.deployment.client(self.creds)
        # The *_with_http_info call is the SDK's way to the response headers (Twilio-Request-Id).
        answer, raw = await self.deployment.call(lambda: client.messages.create_with_http_info_async(**kwargs))
        instance = answer.data
        return SendResult(
            provider_message_id=instance.sid,
            status=instance.status or "queued",
            raw=raw or {"sid": instance.sid, "status": instance.status},
            request_id=request_id(answer.headers),
        )

    async def fetch(self, provider_id: str) -> SendResult:
        """The Message as Twilio has it now (for a reconciler): status, and in `raw` the
        error_code/error_message a lost callback would have carried."""
        client = self.deployment.client(self.creds)
        instance, raw = await self.deployment.call(lambda: client.messages(provider_id).fetch_async())
        return SendResult(
            provider_message_id=instance.sid or provider_id,
            status=instance.status or "",
            raw=raw or {"sid": instance.sid, "status": instance.status, "error_code": instance.error_code},
        )

    async def recent_messages(self, to: str, *, since: datetime, limit: int = RECENT_LIMIT) -> list[ListedMessage]:
        """Messages to `to`, newest first, created at or after `since` (Twilio's clock), at most `limit`.

        Filtered by To only: DateSent stays null while a message is queued, so a DateSent filter
        would hide exactly the copy we look for. Pages are read until a message older than `since`."""
        client = self.deployment.client(self.creds)

        async def read() -> list[ListedMessage]:
            found: list[ListedMessage] = []
            stream = await client.messages.stream_async(
                to=whatsapp_address(to), limit=limit, page_size=RECENT_PAGE_SIZE
            )
            async for m in stream:
                created = m.date_created
                if created is not None and created < since:
                    break  # newest first: everything after this is older still
                found.append(
                    ListedMessage(
                        sid=m.sid or "",
                        to=m.to or "",
                        from_=m.from_,
                        messaging_service_sid=m.messaging_service_sid,
                        body=m.body,
                        status=str(m.status or ""),
                        direction=str(m.direction or ""),
                        date_created=created,
                        error_code=None if m.error_code is None else str(m.error_code),
                        error_message=m.error_message,
                    )
                )
            return found

        listed, _ = await self.deployment.call(read)
        return cast(list[ListedMessage], listed)

    async def verify_credentials(self) -> dict[str, Any]:
        """GET /2010-04-01/Accounts/{Sid}.json: bad_credentials when Twilio refuses them or the
        account is not active, transient when Twilio cannot be reached."""
        creds = self.creds
        client = self.deployment.client(creds)
        try:
            instance, raw = await self.deployment.call(
                lambda: client.api.v2010.accounts(creds.account_sid).fetch_async()
            )
        except ChannelError as exc:
            if exc.http_status in (401, 403, 404):
                raise ChannelError(
                    FailureClass.BAD_CREDENTIALS, exc.message, code=exc.code, http_status=exc.http_status
                ) from exc
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
    if message.validity_period is not None:
        if not 1 <= message.validity_period <= MAX_VALIDITY_PERIOD:
            raise ValueError(f"validity_period must be 1..{MAX_VALIDITY_PERIOD} seconds")
        kwargs["validity_period"] = message.validity_period

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


if TYPE_CHECKING:  # mypy --strict checks that the channel really is one (channels/base.py)

    def _conforms(channel: TwilioChannel) -> tuple[Channel[WhatsAppMessage], ListsRecent]:
        return channel, channel
