"""The SSRF guard for tenant-supplied media URLs (OWASP API7), plus WhatsApp's type/size limits.

We fetch (HEAD) what a tenant names, from inside our network, so a URL must never reach an
internal address: not directly, not through an IP encoding trick (2130706433, 0x7f.1: we refuse
what getaddrinfo resolves, not what the string looks like), not through an IPv6 wrapper of an
IPv4 address, not through a redirect, and not through DNS rebinding between our check and our
request (the request is pinned to the address we checked; TLS still verifies the real hostname).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from channels.base import ChannelError, FailureClass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# FACTS §6.3: "the maximum size limit is 16MB. The size limit for images is only 5 MB." Twilio
# does not say whether MB is 10^6 or 2^20; the decimal reading is the stricter one, so we refuse
# early rather than let Twilio fail the message later.
MAX_MEDIA_BYTES = 16_000_000
MAX_IMAGE_BYTES = 5_000_000

_DOCS = (
    "application/pdf",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)
# Twilio's WhatsApp list (FACTS §6.3): images JPG/JPEG/PNG/WEBP, audio OGG/AMR/3GP/AAC/MPEG,
# video MP4, documents PDF/DOC/DOCX/PPTX/XLSX, contacts vCard.
WHATSAPP_MEDIA_LIMITS: Mapping[str, int] = {
    **{t: MAX_IMAGE_BYTES for t in ("image/jpeg", "image/jpg", "image/png", "image/webp")},
    **{t: MAX_MEDIA_BYTES for t in ("audio/ogg", "audio/amr", "audio/3gpp", "audio/aac", "audio/mpeg")},
    "video/mp4": MAX_MEDIA_BYTES,
    **{t: MAX_MEDIA_BYTES for t in _DOCS},
    **{t: MAX_MEDIA_BYTES for t in ("text/vcard", "text/x-vcard")},
}

_METADATA = {
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack...
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
}
_IPV4_COMPAT = ipaddress.ip_network("::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_REDIRECTS = {301, 302, 303, 307, 308}


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, compatible, translated, 6to4, Teredo,
    NAT64): each is a way to make "::something" reach 127.0.0.1 or 10.0.0.1."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _IPV4_COMPAT and int(ip) > 1:  # ::/96 minus :: and ::1, which are themselves
        return low32
    if ip in _IPV4_TRANSLATED or any(ip in net for net in _NAT64):
        return low32
    return None


def address_refusal(address: str | IPAddress) -> str | None:
    """Why we refuse to connect to `address`, or None when it is a public unicast address."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            why = address_refusal(inner)
            return f"{why} (IPv4 {inner} inside IPv6 {ip})" if why else None
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    if ip in _METADATA:
        return "cloud metadata endpoint"
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
    )
    for name, hit in checks:
        if hit:
            return f"{name} address"
    if not ip.is_global:  # shared 100.64/10, benchmarking, documentation ranges...
        return "address not globally routable"
    return None


@dataclass(frozen=True)
class MediaInfo:
    url: str  # the URL as given (what Twilio will fetch)
    final_url: str  # after redirects
    content_type: str
    content_length: int | None  # None when the server does not say


def _refuse(reason: str) -> ChannelError:
    return ChannelError(FailureClass.MEDIA_INVALID, reason)


@dataclass(frozen=True)
class _Target:
    url: str
    host: str
    pinned: IPAddress | None  # None for trusted hosts


class MediaGuard:
    """Vets a media URL and HEADs it. One instance can be shared; it holds no connections.

    `trusted_hosts` ("host" or "host:port", e.g. the emulator's "127.0.0.1:8025") skip the
    address check only; the scheme rule and the type/size checks still apply.
    """

    def __init__(
        self,
        *,
        allow_http: bool = False,
        trusted_hosts: Iterable[str] = (),
        timeout: float = 5.0,
        max_redirects: int = 3,
        limits: Mapping[str, int] = WHATSAPP_MEDIA_LIMITS,
    ) -> None:
        self.allow_http = allow_http
        self.trusted_hosts = frozenset(h.strip().lower() for h in trusted_hosts if h.strip())
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.limits = limits

    async def check(self, url: str) -> MediaInfo:
        """Raise ChannelError(MEDIA_INVALID, reason) unless `url` is safe and WhatsApp can send it."""
        current = url
        for _ in range(self.max_redirects + 1):
            target = await self.vet(current)
            response = await self._head(target)
            if response.status_code not in _REDIRECTS:
                return self._judge(url, current, response)
            location = response.headers.get("location")
            if not location:
                raise _refuse(f"media URL redirected (HTTP {response.status_code}) without a Location")
            current = urljoin(current, location)
        raise _refuse(f"media URL redirected more than {self.max_redirects} times")

    async def vet(self, url: str) -> _Target:
        """Scheme, shape and address checks only (DNS, no HTTP)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise _refuse(f"media URL is malformed: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme != "https" and not (scheme == "http" and self.allow_http):
            allowed = "https or http" if self.allow_http else "https"
            raise _refuse(f"media URL must use {allowed}, not {scheme or 'no scheme'!r}")
        if parts.username is not None or parts.password is not None:
            raise _refuse("media URL must not carry credentials")
        host = (parts.hostname or "").lower()
        if not host:
            raise _refuse("media URL has no host")
        port = port or (443 if scheme == "https" else 80)
        if host in self.trusted_hosts or f"{host}:{port}" in self.trusted_hosts:
            return _Target(url, host, None)
        addresses = await self._resolve(host, port)
        for ip in addresses:
            why = address_refusal(ip)
            if why:
                raise _refuse(f"media host {host!r} resolves to {ip}: {why} refused")
        return _Target(url, host, addresses[0])

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), self.timeout)
        except (TimeoutError, socket.gaierror, UnicodeError) as exc:
            raise _refuse(f"media host {host!r} does not resolve ({exc.__class__.__name__})") from None
        seen: dict[IPAddress, None] = {}
        for *_, sockaddr in infos:
            seen.setdefault(ipaddress.ip_address(sockaddr[0]), None)
        if not seen:
            raise _refuse(f"media host {host!r} does not resolve")
        return list(seen)

    async def _head(self, target: _Target) -> httpx.Response:
        request_url, headers, extensions = _pinned_request(target)
        # A fresh client per hop: a pooled connection to the same IP must never carry another
        # host's request (its TLS session was made for a different SNI name).
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False, trust_env=False) as client:
            try:
                response = await client.head(request_url, headers=headers, extensions=extensions)
                if response.status_code in (405, 501):  # no HEAD support: headers of a GET, no body
                    async with client.stream("GET", request_url, headers=headers, extensions=extensions) as streamed:
                        response = streamed
            except httpx.TimeoutException:
                raise _refuse(f"media URL did not answer within {self.timeout:g}s") from None
            except httpx.HTTPError as exc:
                raise _refuse(f"media URL could not be fetched ({exc.__class__.__name__})") from None
        return response

    def _judge(self, url: str, final_url: str, response: httpx.Response) -> MediaInfo:
        if response.status_code >= 400:
            raise _refuse(f"media URL answered HTTP {response.status_code}")
        raw_type = response.headers.get("content-type", "")
        content_type = raw_type.split(";", 1)[0].strip().lower()
        if not content_type:
            raise _refuse("media URL sends no Content-Type (Twilio rejects such media)")
        limit = self.limits.get(content_type)
        if limit is None:
            raise _refuse(f"media type {content_type!r} cannot be sent on WhatsApp")
        length: int | None = None
        raw_length = response.headers.get("content-length")
        if raw_length is not None:
            try:
                length = int(raw_length)
            except ValueError:
                raise _refuse(f"media URL sends an invalid Content-Length {raw_length!r}") from None
            if length > limit:
                raise _refuse(f"media is {length} bytes; {content_type} is limited to {limit} bytes")
        return MediaInfo(url=url, final_url=final_url, content_type=content_type, content_length=length)


def _pinned_request(target: _Target) -> tuple[str, dict[str, str], dict[str, str]]:
    """The request for `target`, sent to the vetted IP with the real Host header and TLS name."""
    if target.pinned is None:
        return target.url, {}, {}
    parts = urlsplit(target.url)
    ip_text = f"[{target.pinned}]" if target.pinned.version == 6 else str(target.pinned)
    netloc = ip_text + (f":{parts.port}" if parts.port else "")
    request_url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host = f"[{target.host}]" if ":" in target.host else target.host
    host_header = host + (f":{parts.port}" if parts.port else "")
    extensions = {"sni_hostname": target.host} if parts.scheme.lower() == "https" else {}
    return request_url, {"Host": host_header}, extensions


async def check_media_url(
    url: str, *, allow_http: bool = False, trusted_hosts: Iterable[str] = (), timeout: float = 5.0
) -> MediaInfo:
    return await MediaGuard(allow_http=allow_http, trusted_hosts=trusted_hosts, timeout=timeout).check(url)
