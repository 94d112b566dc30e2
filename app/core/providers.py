"""The configured channel adapters, one per process, pointed at the emulator when configured."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from app.core.config import get_settings


@lru_cache(maxsize=1)
def twilio() -> Any:
    from channels.twilio_whatsapp import TwilioWhatsApp

    s = get_settings()
    return TwilioWhatsApp(base_url=s.twilio_api_base_url, timeout=s.provider_timeout_seconds)


@lru_cache(maxsize=1)
def sendgrid() -> Any:
    from channels.sendgrid_email import SendgridEmail

    s = get_settings()
    return SendgridEmail(host=s.sendgrid_api_base_url, timeout=s.provider_timeout_seconds)
