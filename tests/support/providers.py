"""Provider fixtures (loaded by tests/conftest.py): a real emulator server and a real callback receiver.

`emulator`      the Twilio/SendGrid emulator (channels.emulator) served by uvicorn on 127.0.0.1 in a
                background thread. One server per session; its state is reset around every test.
`callback_sink` a tiny threaded HTTP server that records every request it gets (status callbacks,
                inbound webhooks, SendGrid event batches) and answers as told.

Interface (kept stable; adapter tests rely on it):

    emulator.base_url                      "http://127.0.0.1:PORT" (point the SDKs here)
    emulator.state                         the live EmulatorState (read-only use, please)
    emulator.http                          an httpx.Client on base_url, for raw calls
    emulator.create_account(inbound_url=None, friendly_name=None) -> {"account_sid", "auth_token",
        "api_key_sid", "api_key_secret", "whatsapp_from", "messaging_service_sid", ...}
    emulator.set_inbound_url(account_sid, url) -> account dict
    emulator.create_template(account_sid, variables=("1",), content_sid=None, body=None,
        approval="approved", category="UTILITY", language="en", friendly_name=None) -> "HX..."
    emulator.review_template(content_sid, approval=..., category=..., rejection_reason=...) -> template dict
    emulator.inbound(account_sid, from_="+E164", body="Hi", *, to=None, media_url=None,
        media_content_type=None, profile_name=None, bsuid=None, hide_phone=False, prefixless=False)
        -> {"message_sid", "opened_windows",
            "webhook": {"url", "params", "headers", "attempts", "response_status", "response_body"} | None}
    emulator.messages(account_sid=None, to=None) -> [message record with "callbacks"]
    emulator.message(message_sid) -> message record
    emulator.create_sendgrid_key(event_webhook_url=None) -> {"api_key", "event_webhook_public_key", ...}
    emulator.set_event_url(api_key, url) -> key dict
    emulator.sendgrid_messages(api_key=None, to=None) -> [mail record with "events" and "deliveries"]
    emulator.advance(seconds) / emulator.reset() / emulator.configure(slow_response_seconds=..., ...)
    emulator.wait_idle(timeout=10)         wait until every callback/event batch has been delivered
    emulator.wait_for(fn, timeout=10)      poll fn() until it returns something truthy, and return it
    emulator.twilio_client(account, api_key=True, timeout=5) -> twilio.rest.Client aimed at the emulator
    emulator.sendgrid_client(api_key) -> SendGridAPIClient aimed at the emulator

    callback_sink.base_url / callback_sink.url("/status?x=1")
    callback_sink.respond(status=200, body="", content_type="text/plain", times=None, delay=0.0, path=None)
    callback_sink.wait_for(count=1, timeout=10, path=None) -> [Received]
    callback_sink.received(path=None) -> [Received]
    Received: .method .path (with query) .url .headers (case-insensitive) .body (bytes)
              .form (multidict) .json() .twilio_signature_valid(auth_token)

`twilio_schemas` validates JSON against Twilio's own OpenAPI description (FACTS §3.1):
    twilio_schemas.message(obj) / .account(obj) / .message_list(obj)   raise on any violation
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import httpx
import jsonschema
import pytest
import uvicorn
from multidict import CIMultiDict, MultiDict

from channels.emulator import EmulatorState, create_emulator_app

T = TypeVar("T")

# The fixture's configuration, restored on every reset. The 30 s delay of +15005550005 is the contract;
# tests that want to wait for it shorten it with emulator.configure(slow_response_seconds=...).
EMULATOR_DEFAULTS = {
    "slow_response_seconds": 30.0,
    "callback_delay_seconds": 0.0,
    "webhook_connect_timeout": 2.0,
    "webhook_read_timeout": 5.0,
    "accept_bsuid_to": True,
    "response_latency_seconds": 0.0,
}


class EmulatorCallError(AssertionError):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(
            f"{response.request.method} {response.request.url.path} -> {response.status_code}: {response.text}"
        )
        self.response = response


def _poll(fn: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def reserve_socket() -> socket.socket:
    """A bound 127.0.0.1 socket on a free port, kept until a server takes it (so the port can be configured first)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class UvicornThread:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in a daemon thread."""

    def __init__(self, app: Any, sock: socket.socket | None = None) -> None:
        self._sock = sock or reserve_socket()
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            loop="asyncio",
            http="h11",
            lifespan="on",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, name=f"uvicorn-{self.port}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        _poll(lambda: self.server.started, 15, "uvicorn to start")

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(10)
        self._sock.close()


@dataclass
class Emulator:
    base_url: str
    state: EmulatorState
    http: httpx.Client

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise EmulatorCallError(response)
        return response.json()

    # Twilio
    def create_account(self, inbound_url: str | None = None, friendly_name: str | None = None) -> dict[str, Any]:
        body = {k: v for k, v in {"inbound_url": inbound_url, "friendly_name": friendly_name}.items() if v}
        return self._call("POST", "/_emulator/twilio/accounts", json=body)

    def set_inbound_url(self, account_sid: str, url: str | None) -> dict[str, Any]:
        return self._call("PATCH", f"/_emulator/twilio/accounts/{account_sid}", json={"inbound_url": url})

    def set_limits(self, account_sid: str, tier: int | None = None, mps: float | None = None) -> dict[str, Any]:
        """The account's WhatsApp sender: its messaging-limit tier and MPS (past either, 63018)."""
        return self._call("PUT", f"/_emulator/twilio/accounts/{account_sid}/limits", json={"tier": tier, "mps": mps})

    def create_template(
        self,
        account_sid: str,
        variables: tuple[str, ...] | list[str] = ("1",),
        content_sid: str | None = None,
        body: str | None = None,
        **review: Any,
    ) -> str:
        """`review` may set approval, category, language and friendly_name (approved UTILITY en by default)."""
        payload: dict[str, Any] = {"account_sid": account_sid, "variables": list(variables), **review}
        if content_sid:
            payload["content_sid"] = content_sid
        if body:
            payload["body"] = body
        return self._call("POST", "/_emulator/twilio/templates", json=payload)["content_sid"]

    def review_template(self, content_sid: str, **changes: Any) -> dict[str, Any]:
        """Set a template's approval (approved, pending, rejected, paused, ...), category or rejection_reason."""
        return self._call("PATCH", f"/_emulator/twilio/templates/{content_sid}", json=changes)

    def inbound(
        self,
        account_sid: str,
        from_: str | None = "+15551230000",
        body: str = "Hi",
        *,
        to: str | None = None,
        media_url: str | None = None,
        media_content_type: str | None = None,
        profile_name: str | None = None,
        bsuid: str | None = None,
        hide_phone: bool = False,
        prefixless: bool = False,
    ) -> dict[str, Any]:
        payload = {
            "account_sid": account_sid,
            "from": from_,
            "to": to,
            "body": body,
            "media_url": media_url,
            "media_content_type": media_content_type,
            "profile_name": profile_name,
            "bsuid": bsuid,
            "hide_phone": hide_phone,
            "prefixless": prefixless,
        }
        return self._call("POST", "/_emulator/twilio/inbound", json={k: v for k, v in payload.items() if v is not None})

    def messages(self, account_sid: str | None = None, to: str | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"account_sid": account_sid, "to": to}.items() if v}
        return self._call("GET", "/_emulator/twilio/messages", params=params)["messages"]

    def message(self, message_sid: str) -> dict[str, Any]:
        return self._call("GET", f"/_emulator/twilio/messages/{message_sid}")

    # SendGrid
    def create_sendgrid_key(self, event_webhook_url: str | None = None) -> dict[str, Any]:
        body = {"event_webhook_url": event_webhook_url} if event_webhook_url else {}
        return self._call("POST", "/_emulator/sendgrid/keys", json=body)

    def set_event_url(self, api_key: str, url: str | None) -> dict[str, Any]:
        return self._call("PATCH", f"/_emulator/sendgrid/keys/{api_key}", json={"event_webhook_url": url})

    def sendgrid_messages(self, api_key: str | None = None, to: str | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"api_key": api_key, "to": to}.items() if v}
        return self._call("GET", "/_emulator/sendgrid/messages", params=params)["messages"]

    # clock, config, lifecycle
    def advance(self, seconds: float) -> dict[str, Any]:
        return self._call("POST", "/_emulator/clock", json={"advance_seconds": seconds})

    def configure(self, **settings: float | bool) -> dict[str, Any]:
        return self._call("POST", "/_emulator/config", json=settings)

    def reset(self) -> None:
        self._call("POST", "/_emulator/reset")
        self.configure(**EMULATOR_DEFAULTS)

    def wait_idle(self, timeout: float = 10.0) -> None:
        _poll(lambda: self.state.pending == 0, timeout, "the emulator's callbacks to finish")

    def wait_for(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        return _poll(fn, timeout, getattr(fn, "__name__", "a condition"))

    # the official SDKs, aimed here
    def twilio_client(self, account: dict[str, Any], api_key: bool = True, timeout: float = 5.0) -> Any:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        username, password = (
            (account["api_key_sid"], account["api_key_secret"])
            if api_key
            else (account["account_sid"], account["auth_token"])
        )
        client = Client(username, password, account["account_sid"], http_client=TwilioHttpClient(timeout=timeout))
        client.api.base_url = self.base_url
        return client

    def sendgrid_client(self, api_key: str) -> Any:
        from sendgrid import SendGridAPIClient

        client = SendGridAPIClient(api_key, host=self.base_url)
        client.client.timeout = 10
        return client


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[tuple[UvicornThread, EmulatorState]]:
    from tests.conftest import EMULATOR_SOCKET  # its port is already in the gateway's settings

    state = EmulatorState(**EMULATOR_DEFAULTS)
    server = UvicornThread(create_emulator_app(state), EMULATOR_SOCKET)
    server.start()
    yield server, state
    server.stop()


@contextmanager
def emulator_handle(emulator_server: tuple[UvicornThread, EmulatorState]) -> Iterator[Emulator]:
    """A handle on the session's emulator, reset before and after use."""
    server, state = emulator_server
    base_url = f"http://127.0.0.1:{server.port}"
    with httpx.Client(base_url=base_url, timeout=60, trust_env=False) as http:
        handle = Emulator(base_url=base_url, state=state, http=http)
        handle.reset()
        yield handle
        handle.reset()


@pytest.fixture
def emulator(emulator_server: tuple[UvicornThread, EmulatorState]) -> Iterator[Emulator]:
    with emulator_handle(emulator_server) as handle:
        yield handle


# --- callback sink -------------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str  # path and query string, as requested
    headers: CIMultiDict[str]
    body: bytes
    base_url: str

    @property
    def url(self) -> str:
        return self.base_url + self.path

    @property
    def form(self) -> MultiDict[str]:
        return MultiDict(parse_qsl(self.body.decode(), keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body)

    def twilio_signature_valid(self, auth_token: str) -> bool:
        from twilio.request_validator import RequestValidator

        return RequestValidator(auth_token).validate(self.url, self.form, self.headers.get("X-Twilio-Signature", ""))


@dataclass
class _Rule:
    status: int
    body: bytes
    content_type: str
    times: int | None
    delay: float
    path: str | None


@dataclass
class CallbackSink:
    base_url: str = ""
    _requests: list[Received] = field(default_factory=list)
    _rules: list[_Rule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/callback") -> str:
        return self.base_url + path

    def respond(
        self,
        status: int = 200,
        body: str | bytes = "",
        content_type: str = "text/plain",
        times: int | None = None,
        delay: float = 0.0,
        path: str | None = None,
    ) -> None:
        """Answer the next `times` requests (all, if None) to `path` (any, if None) like this."""
        with self._lock:
            self._rules.append(
                _Rule(status, body.encode() if isinstance(body, str) else body, content_type, times, delay, path)
            )

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._requests if path is None or urlsplit(r.path).path == path]

    def wait_for(self, count: int = 1, timeout: float = 10.0, path: str | None = None) -> list[Received]:
        return _poll(
            lambda: (got := self.received(path)) and len(got) >= count and got,
            timeout,
            f"{count} request(s) at the callback sink",
        )

    def _answer(self, received: Received) -> _Rule:
        with self._lock:
            self._requests.append(received)
            for rule in self._rules:
                if (rule.path is None or rule.path == urlsplit(received.path).path) and rule.times != 0:
                    if rule.times is not None:
                        rule.times -= 1
                    return rule
        return _Rule(200, b"", "text/plain", None, 0.0, None)


def _sink_handler(sink: CallbackSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            rule = sink._answer(
                Received(self.command, self.path, CIMultiDict(self.headers.items()), body, sink.base_url)
            )
            if rule.delay:
                time.sleep(rule.delay)
            self.send_response(rule.status)
            self.send_header("Content-Type", rule.content_type)
            self.send_header("Content-Length", str(len(rule.body)))
            self.end_headers()
            self.wfile.write(rule.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    return Handler


@pytest.fixture
def callback_sink() -> Iterator[CallbackSink]:
    sink = CallbackSink()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _sink_handler(sink))
    server.daemon_threads = True
    sink.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield sink
    server.shutdown()
    server.server_close()
    thread.join(5)


# --- Twilio's OpenAPI schemas ---------------------------------------------------------------------

# The Messages and Account schemas cut verbatim from Twilio's own spec (twilio/twilio-oai; the full file
# is ../shared/twilio/twilio_api_v2010.json), kept in the repo so a fresh clone runs these tests.
TWILIO_SPEC = Path(
    os.environ.get("NOTIFYGW_TWILIO_SPEC")
    or Path(__file__).resolve().parents[1] / "fixtures" / "twilio_api_v2010_messages.json"
)


def openapi_to_jsonschema(node: Any, components: dict[str, Any]) -> Any:
    """OpenAPI 3.0 -> JSON Schema: inline $refs, and turn `nullable: true` into a type list (and a null enum)."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return openapi_to_jsonschema(components[node["$ref"].rsplit("/", 1)[-1]], components)
    out = {
        k: openapi_to_jsonschema(v, components)
        for k, v in node.items()
        if k not in ("nullable", "description", "example", "examples") and not k.startswith("x-")
    }
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _rfc2822_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(formats=())  # only our format: relative *_uri values are not absolute URIs

    @checker.checks("date-time-rfc-2822", raises=(TypeError, ValueError))
    def rfc2822(value: object) -> bool:
        return not isinstance(value, str) or (parsedate_to_datetime(value) is not None and value.endswith(" +0000"))

    return checker


class TwilioSchemas:
    def __init__(self, spec: dict[str, Any]) -> None:
        components = spec["components"]["schemas"]
        messages_path = spec["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages.json"]
        self.schemas = {
            "message": openapi_to_jsonschema(components["api.v2010.account.message"], components),
            "account": openapi_to_jsonschema(components["api.v2010.account"], components),
            "message_list": openapi_to_jsonschema(
                messages_path["get"]["responses"]["200"]["content"]["application/json"]["schema"], components
            ),
        }
        self._checker = _rfc2822_checker()

    def _validate(self, name: str, instance: Any) -> None:
        schema = self.schemas[name]
        jsonschema.Draft202012Validator(schema, format_checker=self._checker).validate(instance)
        # The spec lists no required fields; the emulator must still send exactly the spec's fields.
        assert set(instance) == set(schema["properties"]), f"{name} fields differ from the spec"

    def message(self, instance: Any) -> None:
        self._validate("message", instance)

    def account(self, instance: Any) -> None:
        self._validate("account", instance)

    def message_list(self, instance: Any) -> None:
        self._validate("message_list", instance)
        for message in instance["messages"]:
            self.message(message)


@pytest.fixture(scope="session")
def twilio_schemas() -> TwilioSchemas:
    assert TWILIO_SPEC.is_file(), f"Twilio's OpenAPI spec is missing at {TWILIO_SPEC} (set NOTIFYGW_TWILIO_SPEC)"
    return TwilioSchemas(json.loads(TWILIO_SPEC.read_text()))
