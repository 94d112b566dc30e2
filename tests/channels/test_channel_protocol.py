"""Every channel stands behind the one Channel protocol (channels/base.py), and the simulated one reaches no one."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from channels.base import Channel, EmailMessage, ListsRecent, SendgridCredentials, TwilioCredentials, WhatsAppMessage

# Static conformance (the types, not just the names) is checked by `mypy --strict channels/`: each adapter
# module ends with a TYPE_CHECKING function that returns its channel as the protocol.
from channels.sendgrid_email import SendGridChannel, SendGridEmail
from channels.simulated import SIMULATED_PREFIX, SimulatedChannel
from channels.twilio_whatsapp import TwilioChannel, TwilioWhatsApp

PROTOCOL_METHODS = ("send", "fetch", "verify_credentials")


def _channels() -> list[Any]:
    return [
        TwilioWhatsApp(base_url="http://127.0.0.1:9").channel(TwilioCredentials("AC" + "0" * 32, "0" * 32)),
        SendGridEmail(host="http://127.0.0.1:9").channel(SendgridCredentials("SG.k.k", "a@b.test")),
        SimulatedChannel(),
    ]


@pytest.mark.parametrize("channel", _channels(), ids=lambda c: c.provider)
def test_each_channel_has_the_protocol_methods_with_its_signatures(channel: Any) -> None:
    for name in PROTOCOL_METHODS:
        ours = inspect.signature(getattr(Channel, name))
        theirs = inspect.signature(getattr(type(channel), name))
        assert inspect.iscoroutinefunction(getattr(channel, name)), name
        assert list(theirs.parameters)[1:] == list(ours.parameters)[1:], name
    assert channel.provider in ("twilio", "sendgrid", "simulated")


def test_only_twilio_lists_recent_messages() -> None:
    assert hasattr(TwilioChannel, "recent_messages")
    assert not hasattr(SendGridChannel, "recent_messages") and not hasattr(SimulatedChannel, "recent_messages")
    assert "recent_messages" in ListsRecent.__dict__


async def test_simulated_channel_accepts_and_delivers_without_a_provider() -> None:
    channel = SimulatedChannel()
    first = await channel.send(WhatsAppMessage(to="+15551234567", kind="session", from_="+15550000000", body="hi"))
    second = await channel.send(EmailMessage(to="a@b.test", subject="s", text="t"))
    assert first.provider_message_id.startswith(SIMULATED_PREFIX) and first.status == "delivered"
    assert first.provider_message_id != second.provider_message_id  # unique per (provider, id)
    assert (await channel.fetch(first.provider_message_id)).status == "delivered"
    assert (await channel.verify_credentials()) == {"simulated": True}
