"""Slow, idle and greedy clients against `notifygw serve` itself (issue 11, section 8).

Each server is the real console script in a subprocess, with the timeouts and the concurrency limit
set small through NOTIFYGW_* variables, and spoken to over raw sockets: a slowloris trickling
headers, a body that trickles, an idle keep-alive connection, more requests than the limit. The
assertions are on what the server does (answers 408/503, closes the connection), never on how long
it took; the client-side waits are only there so that a server that never acts fails the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.providers import reserve_socket

# Far above the small server-side timeouts below: reaching one of these means the server never acted.
GIVE_UP_SECONDS = 20.0
TRICKLE_PAUSE = 0.2


def _serve(**env: str) -> Iterator[str]:
    sock = reserve_socket()
    port = sock.getsockname()[1]
    sock.close()  # the subprocess binds it
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env={**os.environ, **{f"NOTIFYGW_{k}": v for k, v in env.items()}},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise AssertionError(f"notifygw serve exited with {proc.returncode}")
            try:
                if httpx.get(base + "/healthz", timeout=1.0).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("notifygw serve did not come up")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def strict_server(database: str) -> Iterator[str]:
    """One-second timeouts for headers, body and idle keep-alive."""
    yield from _serve(
        HEADER_TIMEOUT_SECONDS="1", BODY_TIMEOUT_SECONDS="1", KEEPALIVE_TIMEOUT_SECONDS="1", MAX_HEADER_BYTES="4096"
    )


@pytest.fixture(scope="module")
def busy_server(database: str) -> Iterator[str]:
    """Two requests at a time; bodies may take long, so two stalled uploads hold both places."""
    yield from _serve(MAX_CONCURRENT_REQUESTS="2", BODY_TIMEOUT_SECONDS="120", HEADER_TIMEOUT_SECONDS="120")


async def _connect(base: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = base.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def _answer_while_trickling(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, trickle: bytes) -> bytes:
    """Send `trickle` a byte at a time until the server answers (or closes); what it answered."""
    deadline = time.monotonic() + GIVE_UP_SECONDS
    for byte in trickle * 1000:
        if time.monotonic() > deadline:
            break
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            return await reader.read()
        try:
            data = await asyncio.wait_for(reader.read(65536), TRICKLE_PAUSE)
        except TimeoutError:
            continue
        try:
            return data + await _rest(reader)
        except ConnectionResetError:
            # The server answered and closed with our last bytes unread, so its kernel reset the
            # connection: closed it is, and the answer is what came before the reset.
            return data
    raise AssertionError("the server let the trickle go on")


async def _rest(reader: asyncio.StreamReader) -> bytes:
    """Everything until the server closes the connection (it must)."""
    return await asyncio.wait_for(reader.read(), GIVE_UP_SECONDS)


def _response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


async def test_a_connection_that_never_sends_a_byte_is_closed(strict_server):
    reader, writer = await _connect(strict_server)
    assert await _rest(reader) == b""  # EOF: the server hung up
    writer.close()


async def test_headers_sent_byte_by_byte_are_cut_off_with_408(strict_server):
    reader, writer = await _connect(strict_server)
    writer.write(b"POST /v1/notifications HTTP/1.1\r\nHost: gw\r\n")
    raw = await _answer_while_trickling(writer, reader, b"X-Slowloris: aaaaaaaa\r\n")
    status, headers, body = _response(raw)
    assert status == 408 and headers["content-type"] == "application/problem+json"
    assert json.loads(body)["type"].endswith("/request-timeout")
    writer.close()


async def test_oversized_headers_are_431(strict_server):
    reader, writer = await _connect(strict_server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n" + b"X-Big: " + b"a" * 8192 + b"\r\n\r\n")
    await writer.drain()
    status, headers, _ = _response(await _rest(reader))
    assert status == 431 and headers["content-type"] == "application/problem+json"
    writer.close()


async def test_a_trickling_body_is_408_and_the_connection_closed(strict_server):
    reader, writer = await _connect(strict_server)
    writer.write(
        b"POST /v1/notifications HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        b"Content-Length: 60000\r\n\r\n{"
    )
    raw = await _answer_while_trickling(writer, reader, b'"a": 1, ')
    status, headers, body = _response(raw)
    assert status == 408, raw[:300]
    assert headers["content-type"] == "application/problem+json" and headers["connection"] == "close"
    assert json.loads(body)["type"].endswith("/request-timeout")
    writer.close()


async def test_an_idle_keep_alive_connection_is_closed(strict_server):
    reader, writer = await _connect(strict_server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), GIVE_UP_SECONDS)
    status, headers, _ = _response(head)
    assert status == 200 and headers.get("connection") != "close"  # kept alive...
    await reader.readexactly(int(headers["content-length"]))
    assert await _rest(reader) == b""  # ...until idle too long
    writer.close()


async def test_a_fast_client_is_served_as_before(strict_server):
    async with httpx.AsyncClient(base_url=strict_server) as http:
        for _ in range(3):  # one kept-alive connection, several requests
            assert (await http.get("/healthz")).status_code == 200
        r = await http.post("/v1/notifications", json={"to": {"phone": "+14155550100"}, "text": "hi"})
        assert r.status_code == 401  # the body arrived in time; only the missing key is refused


async def test_over_the_concurrency_limit_is_503_with_retry_after(busy_server):
    holders = []
    for _ in range(2):  # two uploads that stall after their headers: each holds a place in the app
        reader, writer = await _connect(busy_server)
        writer.write(
            b"POST /v1/notifications HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\n\r\n"
        )
        await writer.drain()
        holders.append((reader, writer))
    async with httpx.AsyncClient(base_url=busy_server) as http:
        for _ in range(100):  # the holders' headers may still be on their way in
            r = await http.get("/healthz")
            if r.status_code == 503:
                break
            await asyncio.sleep(0.05)
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["type"].endswith("/overloaded")
        # A provider callback is never refused for load (Twilio would not retry it): it reaches the
        # app, here to be refused for its missing signature.
        r = await http.post(
            "/webhooks/twilio/status",
            content="AccountSid=AC" + "0" * 32 + "&MessageSid=SM1",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 403, r.text
        for reader, writer in holders:  # the stalled bodies arrive: their requests finish, places free up
            writer.write(b"{}")
            await writer.drain()
            status, _, _ = _response(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), GIVE_UP_SECONDS))
            assert status == 401
            writer.close()
        for _ in range(100):
            r = await http.get("/healthz")
            if r.status_code != 503:
                break
            await asyncio.sleep(0.05)
        assert r.status_code == 200


@pytest.mark.parametrize(
    "name,value",
    [
        ("HEADER_TIMEOUT_SECONDS", "0"),
        ("BODY_TIMEOUT_SECONDS", "soon"),
        ("MAX_CONCURRENT_REQUESTS", "2.5"),
        ("KEEPALIVE_TIMEOUT_SECONDS", "-1"),
    ],
)
def test_a_bad_limit_setting_stops_startup_naming_it(name, value):
    from app.core.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match=f"NOTIFYGW_{name}"):
        load_settings({**os.environ, f"NOTIFYGW_{name}": value})
