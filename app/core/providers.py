"""The configured channel adapters, one per process, pointed at the emulator when configured."""

from __future__ import annotations

from functools import lru_cache

from app.core.config import get_settings
from channels.media import MediaGuard
from channels.sendgrid_email import SendGridEmail
from channels.twilio_whatsapp import TwilioWhatsApp


@lru_cache(maxsize=1)
def media_guard() -> MediaGuard:
    s = get_settings()
    # Plain http only in dev; private addresses only for explicitly trusted hosts (the emulator).
    return MediaGuard(allow_http=s.allow_http_media, trusted_hosts=s.trusted_media_hosts)


@lru_cache(maxsize=1)
def twilio() -> TwilioWhatsApp:
    s = get_settings()
    return TwilioWhatsApp(base_url=s.twilio_api_base_url, timeout=s.provider_timeout_seconds, media_guard=media_guard())


@lru_cache(maxsize=1)
def sendgrid() -> SendGridEmail:
    s = get_settings()
    return SendGridEmail(host=s.sendgrid_api_base_url, timeout=s.provider_timeout_seconds)
