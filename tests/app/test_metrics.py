from __future__ import annotations

from tests.factories import OPERATOR, tenant_with_key
from tests.support.gateway import notify, settle, wired_tenant


async def test_metrics_need_the_operator_token(client):
    assert (await client.get("/metrics")).status_code == 401
    _, headers = await tenant_with_key(client)
    assert (await client.get("/metrics", headers=headers)).status_code == 401


def _value(text: str, line_prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_outcomes_fallbacks_and_webhooks(client, emulator, gateway, worker):
    t = await wired_tenant(client, emulator, gateway)
    before = (await client.get("/metrics", headers=OPERATOR)).text
    await notify(client, t)
    await notify(client, t, text="only text")  # window closed: email fallback
    await settle(emulator)
    text = (await client.get("/metrics", headers=OPERATOR)).text
    assert "notifygw_outbox_pending 0.0" in text and "notifygw_queue_depth" in text
    tenant_label = f'tenant="{t.id}"'
    outcomes = [
        line for line in text.splitlines() if line.startswith("notifygw_notifications_total") and tenant_label in line
    ]
    # Delivered and read may arrive close enough together that "read" is the first final status seen.
    assert any(
        'channel="whatsapp"' in line and ('outcome="delivered"' in line or 'outcome="read"' in line)
        for line in outcomes
    ), outcomes
    assert any('channel="email"' in line and 'outcome="delivered"' in line for line in outcomes), outcomes
    fallback = 'notifygw_fallbacks_total{reason="window_closed"}'
    assert _value(text, fallback) == _value(before, fallback) + 1
    assert _value(text, 'notifygw_webhook_handler_seconds_count{kind="status"}') > _value(
        before, 'notifygw_webhook_handler_seconds_count{kind="status"}'
    )
    assert _value(text, 'notifygw_provider_call_seconds_count{operation="send",provider="twilio"}') >= 1
