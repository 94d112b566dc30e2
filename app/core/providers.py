"""The configured channel adapters, one per process, pointed at the emulator when configured.

The adapters (and the twilio, sendgrid and aiohttp SDKs under them, ~40 MiB) are imported on first
use: the API process calls a provider only to verify new credentials.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from app.core.config import get_settings
from channels.media import MediaGuard

if TYPE_CHECKING:
    from channels.sendgrid_email import SendGridEmail
    from channels.twilio_whatsapp import TwilioWhatsApp


@lru_cache(maxsize=1)
def media_guard() -> MediaGuard:
    s = get_settings()
    # Plain http only in dev; private addresses only for explicitly trusted hosts (the emulator).
    return MediaGuard(allow_http=s.allow_http_media, trusted_hosts=s.trusted_media_hosts)


@lru_cache(maxsize=1)
def twilio() -> TwilioWhatsApp:
    from channels.twilio_whatsapp import TwilioWhatsApp  # on first use: the SDKs' start-up cost (see above)

    s = get_settings()
    return TwilioWhatsApp(base_url=s.twilio_api_base_url, timeout=s.provider_timeout_seconds, media_guard=media_guard())


@lru_cache(maxsize=1)
def sendgrid() -> SendGridEmail:
    from channels.sendgrid_email import SendGridEmail  # on first use: the SDKs' start-up cost (see above)

    s = get_settings()
    return SendGridEmail(host=s.sendgrid_api_base_url, timeout=s.provider_timeout_seconds)
