"""The SSRF guard: address classification, URL vetting, and HEAD checks against a real server."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from channels.base import ChannelError, FailureClass
from channels.media import (
    MAX_IMAGE_BYTES,
    MAX_MEDIA_BYTES,
    WHATSAPP_MEDIA_LIMITS,
    MediaGuard,
    _pinned_request,
    _Target,
    address_refusal,
)


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:7f00:1", "loopback"),
        ("::127.0.0.1", "loopback"),
        ("::ffff:0:127.0.0.1", "loopback"),  # SIIT translated
        ("10.0.0.1", "private"),
        ("10.255.255.255", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.0.1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "metadata"),
        ("::ffff:169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", ""),
        ("255.255.255.255", ""),  # reserved / broadcast (reason wording varies)
        ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
        ("192.0.2.10", ""),
        ("2001:db8::1", ""),  # documentation ranges
        ("2002:7f00:1::", "loopback"),
        ("2002:c0a8:101::1", "private"),  # 6to4 wrapping
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 wrapping
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo, client 127.0.0.1 (obfuscated)
    ],
)
def test_refused_addresses(address: str, words: str) -> None:
    reason = address_refusal(address)
    assert reason is not None, address
    assert words in reason


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "2a00:1450:4001:82b::200e", "::ffff:8.8.8.8"],
)
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(address) is None
    assert address_refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/a.jpg",
        "https://[::1]/a.jpg",
        "https://[::ffff:127.0.0.1]/a.jpg",
        "https://2130706433/a.jpg",  # decimal 127.0.0.1
        "https://0x7f.1/a.jpg",  # hex + short form
        "https://0x7f000001/a.jpg",
        "https://017700000001/a.jpg",  # octal
        "https://127.1/a.jpg",
        "https://localhost/a.jpg",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fe80::1]/a.jpg",
        "https://10.0.0.1/a.jpg",
        "https://172.16.5.4:8443/a.jpg",
        "https://192.168.1.1/a.jpg",
        "https://0.0.0.0/a.jpg",
        "https://0/a.jpg",
    ],
)
async def test_vet_refuses_internal_hosts_however_written(url: str) -> None:
    with pytest.raises(ChannelError) as caught:
        await MediaGuard().vet(url)
    assert caught.value.failure is FailureClass.MEDIA_INVALID
    assert "refused" in caught.value.message


@pytest.mark.parametrize(
    ("url", "allow_http", "words"),
    [
        ("http://8.8.8.8/a.jpg", False, "must use https"),
        ("ftp://8.8.8.8/a.jpg", True, "must use https or http"),
        ("file:///etc/passwd", True, "must use https or http"),
        ("gopher://8.8.8.8/", False, "must use https"),
        ("//8.8.8.8/a.jpg", False, "no scheme"),
        ("https://user:pw@8.8.8.8/a.jpg", False, "credentials"),
        ("https:///a.jpg", False, "no host"),
        ("https://8.8.8.8:99999/a.jpg", False, "malformed"),
        ("https://no-such-host.invalid/a.jpg", False, "does not resolve"),
    ],
)
async def test_vet_refuses_bad_urls(url: str, allow_http: bool, words: str) -> None:
    with pytest.raises(ChannelError) as caught:
        await MediaGuard(allow_http=allow_http).vet(url)
    assert caught.value.failure is FailureClass.MEDIA_INVALID
    assert words in caught.value.message


async def test_vet_pins_public_literals() -> None:
    target = await MediaGuard().vet("https://8.8.8.8/a.jpg")
    assert target.pinned == ipaddress.ip_address("8.8.8.8")


def test_pinned_request_keeps_host_and_tls_name() -> None:
    url, headers, ext = _pinned_request(
        _Target("https://cdn.example.com:8443/p/a.jpg?x=1", "cdn.example.com", ipaddress.ip_address("93.184.215.14"))
    )
    assert url == "https://93.184.215.14:8443/p/a.jpg?x=1"
    assert headers == {"Host": "cdn.example.com:8443"}
    assert ext == {"sni_hostname": "cdn.example.com"}
    url, headers, ext = _pinned_request(
        _Target("http://cdn.example.com", "cdn.example.com", ipaddress.ip_address("2606:4700::1"))
    )
    assert url == "http://[2606:4700::1]/"
    assert headers == {"Host": "cdn.example.com"} and ext == {}
    assert _pinned_request(_Target("http://emu:1/a", "emu", None)) == ("http://emu:1/a", {}, {})


def test_limits_follow_facts() -> None:
    assert MAX_MEDIA_BYTES == 16_000_000 and MAX_IMAGE_BYTES == 5_000_000
    assert WHATSAPP_MEDIA_LIMITS["image/jpeg"] == WHATSAPP_MEDIA_LIMITS["image/png"] == MAX_IMAGE_BYTES
    assert WHATSAPP_MEDIA_LIMITS["video/mp4"] == WHATSAPP_MEDIA_LIMITS["application/pdf"] == MAX_MEDIA_BYTES
    assert "text/html" not in WHATSAPP_MEDIA_LIMITS and "image/gif" not in WHATSAPP_MEDIA_LIMITS


# ---- a real HTTP server on 127.0.0.1, trusted the way the emulator would be --------------------

ROUTES: dict[str, tuple[int, dict[str, str]]] = {
    "/cat.jpg": (200, {"Content-Type": "image/jpeg", "Content-Length": "1234"}),
    "/cat-charset.jpg": (200, {"Content-Type": "Image/JPEG; charset=binary", "Content-Length": "10"}),
    "/exact.png": (200, {"Content-Type": "image/png", "Content-Length": str(MAX_IMAGE_BYTES)}),
    "/big.jpg": (200, {"Content-Type": "image/jpeg", "Content-Length": str(MAX_IMAGE_BYTES + 1)}),
    "/clip.mp4": (200, {"Content-Type": "video/mp4", "Content-Length": "15000000"}),
    "/huge.mp4": (200, {"Content-Type": "video/mp4", "Content-Length": str(MAX_MEDIA_BYTES + 1)}),
    "/doc.pdf": (200, {"Content-Type": "application/pdf"}),  # no length: allowed
    "/page.html": (200, {"Content-Type": "text/html; charset=utf-8", "Content-Length": "10"}),
    "/notype": (200, {"Content-Length": "10"}),
    "/missing.jpg": (404, {"Content-Type": "text/plain", "Content-Length": "0"}),
    "/broken.jpg": (503, {"Content-Type": "text/plain", "Content-Length": "0"}),
    "/to-cat": (302, {"Location": "/cat.jpg"}),
    "/to-to-cat": (301, {"Location": "to-cat"}),
    "/loop": (307, {"Location": "/loop"}),
    "/no-location": (302, {}),
    "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}),
    "/to-ftp": (302, {"Location": "ftp://example.com/cat.jpg"}),
}


class _Handler(BaseHTTPRequestHandler):
    hits: ClassVar[list[tuple[str, str]]] = []

    def _reply(self, with_body: bool) -> None:
        type(self).hits.append((self.command, self.path))
        if self.path == "/slow.jpg":
            time.sleep(5.0)
        if self.path.startswith("/to-localhost"):
            status, headers = 302, {"Location": f"http://localhost:{self.server.server_address[1]}/cat.jpg"}
        elif self.path == "/no-head.pdf":
            if self.command == "HEAD":
                status, headers = 405, {"Allow": "GET", "Content-Length": "0"}
            else:
                status, headers = 200, {"Content-Type": "application/pdf", "Content-Length": "5"}
        else:
            status, headers = ROUTES.get(self.path, (200, {"Content-Type": "image/jpeg", "Content-Length": "1"}))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Connection", "close")
        self.end_headers()
        if with_body and self.command == "GET":
            self.wfile.write(b"%PDF-")

    def do_HEAD(self) -> None:
        self._reply(with_body=False)

    def do_GET(self) -> None:
        self._reply(with_body=True)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def media_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    _Handler.hits = []
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def _guard(host: str, **kwargs: Any) -> MediaGuard:
    return MediaGuard(allow_http=True, trusted_hosts=[host], timeout=kwargs.pop("timeout", 2.0), **kwargs)


@pytest.mark.parametrize(
    ("path", "content_type", "length"),
    [
        ("/cat.jpg", "image/jpeg", 1234),
        ("/cat-charset.jpg", "image/jpeg", 10),
        ("/exact.png", "image/png", MAX_IMAGE_BYTES),
        ("/clip.mp4", "video/mp4", 15_000_000),
        ("/doc.pdf", "application/pdf", None),
    ],
)
async def test_head_accepts(media_server: str, path: str, content_type: str, length: int | None) -> None:
    info = await _guard(media_server).check(f"http://{media_server}{path}")
    assert (info.content_type, info.content_length) == (content_type, length)
    assert info.url == info.final_url == f"http://{media_server}{path}"
    assert _Handler.hits == [("HEAD", path)]  # HEAD only: the media itself is never downloaded


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/big.jpg", f"is {MAX_IMAGE_BYTES + 1} bytes; image/jpeg is limited to {MAX_IMAGE_BYTES}"),
        ("/huge.mp4", f"video/mp4 is limited to {MAX_MEDIA_BYTES}"),
        ("/page.html", "'text/html' cannot be sent on WhatsApp"),
        ("/notype", "no Content-Type"),
        ("/missing.jpg", "HTTP 404"),
        ("/broken.jpg", "HTTP 503"),
        ("/loop", "redirected more than 3 times"),
        ("/no-location", "without a Location"),
        ("/to-metadata", "cloud metadata endpoint refused"),
        ("/to-localhost", "resolves to 127.0.0.1: loopback address refused"),
        ("/to-ftp", "must use https or http"),
    ],
)
async def test_head_refuses(media_server: str, path: str, words: str) -> None:
    with pytest.raises(ChannelError) as caught:
        await _guard(media_server).check(f"http://{media_server}{path}")
    assert caught.value.failure is FailureClass.MEDIA_INVALID
    assert words in caught.value.message


async def test_redirects_are_followed_and_rechecked(media_server: str) -> None:
    info = await _guard(media_server).check(f"http://{media_server}/to-to-cat")
    assert info.url.endswith("/to-to-cat") and info.final_url == f"http://{media_server}/cat.jpg"
    assert info.content_type == "image/jpeg"
    assert [p for _, p in _Handler.hits] == ["/to-to-cat", "/to-cat", "/cat.jpg"]


async def test_redirect_to_refused_address_is_never_requested(media_server: str) -> None:
    with pytest.raises(ChannelError):
        await _guard(media_server).check(f"http://{media_server}/to-localhost")
    # localhost is the same server, but it was never contacted under that (untrusted) name
    assert _Handler.hits == [("HEAD", "/to-localhost")]


async def test_three_redirects_allowed_four_not(media_server: str) -> None:
    guard = _guard(media_server, max_redirects=1)
    with pytest.raises(ChannelError, match="more than 1 times"):
        await guard.check(f"http://{media_server}/to-to-cat")
    assert (await _guard(media_server).check(f"http://{media_server}/to-to-cat")).content_length == 1234


async def test_falls_back_to_get_when_head_is_not_allowed(media_server: str) -> None:
    info = await _guard(media_server).check(f"http://{media_server}/no-head.pdf")
    assert (info.content_type, info.content_length) == ("application/pdf", 5)
    assert _Handler.hits == [("HEAD", "/no-head.pdf"), ("GET", "/no-head.pdf")]


async def test_slow_media_server_times_out(media_server: str) -> None:
    started = time.monotonic()
    with pytest.raises(ChannelError, match="did not answer within 0.3s"):
        await _guard(media_server, timeout=0.3).check(f"http://{media_server}/slow.jpg")
    assert time.monotonic() - started < 3.0  # the server answers after 5 s; a loaded CI host is slow


async def test_untrusted_local_server_is_refused_before_any_request(media_server: str) -> None:
    with pytest.raises(ChannelError, match="loopback address refused"):
        await MediaGuard(allow_http=True).check(f"http://{media_server}/cat.jpg")
    port = media_server.split(":")[1]
    with pytest.raises(ChannelError, match="loopback address refused"):  # trust is per host:port
        await MediaGuard(allow_http=True, trusted_hosts=["127.0.0.1:1"]).check(f"http://127.0.0.1:{port}/cat.jpg")
    assert _Handler.hits == []


async def test_trusted_host_still_needs_an_allowed_scheme(media_server: str) -> None:
    with pytest.raises(ChannelError, match="must use https"):
        await MediaGuard(trusted_hosts=[media_server]).check(f"http://{media_server}/cat.jpg")
    assert (
        await MediaGuard(allow_http=True, trusted_hosts=["127.0.0.1"]).check(f"http://{media_server}/cat.jpg")
    ).content_type == "image/jpeg"
