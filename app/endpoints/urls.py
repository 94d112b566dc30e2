"""The SSRF guard for tenant webhook URLs: the media guard's rules, applied twice.

Once when an endpoint is saved (a refused URL is a 422), and again before every delivery, because
the DNS answer may have changed since (rebinding). The delivery is then sent to the very address
that was checked, with the real Host header and TLS name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from app.core.config import get_settings
from channels.base import ChannelError
from channels.media import MediaGuard, _pinned_request

if TYPE_CHECKING:
    from channels.media import _Target

# Hosts ("host" or "host:port") let through although private, on top of
# NOTIFYGW_WEBHOOK_ENDPOINT_ALLOWED_HOSTS (never NOTIFYGW_TRUSTED_MEDIA_HOSTS: trusting the emulator
# for media must not open endpoints to it). Empty in every running process; only tests add their
# local receiver here (no setting reaches it, so a misconfiguration cannot open the guard in production).
EXTRA_TRUSTED_HOSTS: set[str] = set()


class RefusedUrl(Exception):
    """The URL may not be called; the message says why, in terms a tenant admin can act on."""


def _guard(allow_http: bool | None, trusted_hosts: Iterable[str] | None) -> MediaGuard:
    settings = get_settings()
    return MediaGuard(
        # Plain http only where media may be http too: dev, and the test harness.
        allow_http=settings.allow_http_media if allow_http is None else allow_http,
        trusted_hosts=[*settings.webhook_endpoint_allowed_hosts, *EXTRA_TRUSTED_HOSTS]
        if trusted_hosts is None
        else trusted_hosts,
    )


async def vet(url: str, *, allow_http: bool | None = None, trusted_hosts: Iterable[str] | None = None) -> _Target:
    """The vetted target (address pinned) for `url`, or RefusedUrl. Resolves DNS; makes no request."""
    try:
        return await _guard(allow_http, trusted_hosts).vet(url)
    except ChannelError as exc:
        # The guard speaks of "media URL"/"media host"; here the same rule is about an endpoint.
        raise RefusedUrl(exc.message.removeprefix("media ")) from None


def pinned_request(target: _Target) -> tuple[str, dict[str, str], dict[str, str]]:
    """(URL to request, extra headers, httpx extensions) sending to the vetted address only.

    channels.media keeps this helper private; it is reused rather than copied because it is the
    part that defeats DNS rebinding (and keeps TLS verifying the real hostname).
    """
    return _pinned_request(target)
