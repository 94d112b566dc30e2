"""The simulated channel: what a test API key's notifications are sent through.

The whole pipeline runs (routing, pacing, attempts, decisions), but nothing reaches a provider:
every message is accepted and delivered at once, under an id that no provider would issue (`SIM...`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from channels.base import Channel, EmailMessage, SendResult, WhatsAppMessage

SIMULATED_PREFIX = "SIM"


@dataclass(frozen=True)
class SimulatedChannel:
    """Implements Channel for any message type, with no credentials: test mode only."""

    provider: str = "simulated"

    async def send(self, message: object) -> SendResult:
        sid = f"{SIMULATED_PREFIX}{uuid.uuid4().hex}"
        return SendResult(provider_message_id=sid, status="delivered", raw={"simulated": True})

    async def fetch(self, provider_id: str) -> SendResult:
        """A simulated message was delivered the moment it was sent."""
        return SendResult(provider_message_id=provider_id, status="delivered", raw={"simulated": True})

    async def verify_credentials(self) -> dict[str, Any]:
        return {"simulated": True}


if TYPE_CHECKING:  # mypy --strict checks that the channel really is one (channels/base.py)

    def _conforms(channel: SimulatedChannel) -> tuple[Channel[WhatsAppMessage], Channel[EmailMessage]]:
        return channel, channel
