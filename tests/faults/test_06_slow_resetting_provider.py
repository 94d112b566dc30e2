"""Row 6: the provider is slow (20 s) and resets connections.

The stack's worker reaches "Twilio" through a loopback proxy that alternately resets the connection
(RST after the request) and holds it without answering for 20 s; SendGrid is reached directly.
Pass: the client timeout (NOTIFYGW_PROVIDER_TIMEOUT_SECONDS=3 in tests) fires long before 20 s;
retries stop at MAX_TRIES; the email fallback happens exactly once per notification; the final state
is failed, or delivered by email, with the reason recorded.
"""

from __future__ import annotations

import time
from collections import Counter
from urllib.parse import urlsplit

from sqlalchemy import select

from app.core.db import session_factory
from app.notify.models import Attempt, Decision, Notification
from app.notify.sending import MAX_TRIES
from tests.conftest import EMULATOR_URL
from tests.faults.support import Stack, TcpProxy, notification_body, post_many, report, scale, wait_terminal
from tests.support.gateway import wired_tenant

SLOW = 20.0


async def test_slow_and_resetting_provider(client, emulator, tmp_path):
    count = scale(100, 4)
    started = time.monotonic()
    proxy = TcpProxy(urlsplit(EMULATOR_URL).port, mode="alternate", slow_seconds=SLOW).start()
    stack = Stack(tmp_path, "f06", NOTIFYGW_TWILIO_API_BASE_URL=f"http://{proxy.url_host}")
    try:
        t = await wired_tenant(client, emulator, stack.api_url)
        stack.start_api()
        stack.start_worker(threads=8)
        ids = await post_many(stack.api_url, t.sender, [notification_body(i) for i in range(count)])
        counts = await wait_terminal(ids, timeout=scale(900, 180), emulator=emulator)
    finally:
        stack.close()
        proxy.stop()

    async with session_factory()() as s:
        attempts = (await s.execute(select(Attempt))).scalars().all()
        notifications = {str(n.id): n for n in (await s.execute(select(Notification))).scalars()}
        decisions = (await s.execute(select(Decision))).scalars().all()
    wa = [a for a in attempts if a.channel == "whatsapp"]
    email_per = Counter(str(a.notification_id) for a in attempts if a.channel == "email")
    fallbacks = Counter(str(d.notification_id) for d in decisions if d.step == "fallback" and d.result == "email")
    outcomes = {str(d.notification_id): d.detail for d in decisions if d.step == "outcome"}
    mails = Counter(r for m in emulator.sendgrid_messages(api_key=t.sendgrid["api_key"]) for r in m["recipients"])
    twilio_messages = emulator.messages(account_sid=t.account["account_sid"])
    final = Counter((n.status, n.channel) for n in notifications.values())
    report(6, "provider slow (20 s) and resetting connections", notifications=count,
           connections=dict(proxy.accepted), slow_held_max_s=round(max(proxy.held_seconds or [0]), 2),
           whatsapp_tries=dict(Counter(a.tries for a in wa)), whatsapp_errors=dict(Counter(a.error_class for a in wa)),
           email_attempts=sum(email_per.values()), sendgrid_mails=sum(mails.values()),
           final=dict((f"{k[0]}/{k[1]}", v) for k, v in final.items()), example_reason=next(iter(outcomes.values()), None),
           twilio_messages_created=len(twilio_messages), wall_seconds=round(time.monotonic() - started, 1))
    assert proxy.held_seconds and max(proxy.held_seconds) < SLOW / 2, "the client timeout fired, not the 20 s"
    assert proxy.accepted["reset"] and proxy.accepted["slow"]
    # Transient on every try; once MAX_TRIES is spent the attempt is failed as permanent (app/notify/sending.py).
    assert all(a.tries == MAX_TRIES and a.status == "failed" for a in wa), "retries bounded"
    assert sum(proxy.accepted.values()) <= MAX_TRIES * count
    assert set(email_per) == set(ids) and set(email_per.values()) == {1}, "email fallback exactly once (database)"
    assert set(fallbacks.values()) == {1} and len(fallbacks) == count
    assert set(mails) == {f"user{i}@example.com" for i in range(count)} and set(mails.values()) == {1}, \
        "email fallback exactly once (emulator)"
    assert all(n.status == "failed" or (n.status in ("delivered", "read") and n.channel == "email")
               for n in notifications.values()), final
    assert all(outcomes.get(i) for i in ids), "the reason is recorded"
    assert twilio_messages == [], "nothing reached Twilio"
