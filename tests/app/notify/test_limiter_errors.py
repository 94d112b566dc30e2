"""A limiter that answers with an error fails the job (bounded tries); only an unreachable one is waited out.

Issue 11, §12: with sender_rate_per_second at 1e-300, Redis refused the limiter's command and the
send was rescheduled in 1 s, forever. A real Redis refuses here too: one at its memory limit.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest
import redis.exceptions
from sqlalchemy import select

from app.core.ratelimit import RedisLimiter
from app.notify import pipeline, sending
from app.notify.models import Attempt, Notification
from app.outbox.models import OutboxItem
from tests.factories import make_tenant
from tests.faults.support import RedisServer


def _work(tenant_id: str) -> tuple[Notification, Attempt]:
    n = Notification(id=uuid.uuid4(), tenant_id=uuid.UUID(tenant_id), environment="live")
    return n, Attempt(id=uuid.uuid4(), tenant_id=n.tenant_id, notification_id=n.id, sender="whatsapp:+14155238886")


async def _rescheduled(session, attempt: Attempt) -> list[OutboxItem]:
    return list((await session.execute(select(OutboxItem).where(OutboxItem.ref_id == attempt.id))).scalars())


async def test_a_limiter_refusing_its_command_fails_the_job_instead_of_retrying_every_second(
    client, session, monkeypatch, tmp_path: Path
):
    tenant = await make_tenant(client)
    server = RedisServer(tmp_path)
    server.start()
    try:
        admin = server.client()
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "1")  # every write is refused: "OOM command not allowed"
        monkeypatch.setattr(sending, "limiter", lambda: RedisLimiter(server.url, "t"))
        n, attempt = _work(tenant["id"])
        with pytest.raises(redis.exceptions.ResponseError):
            await sending._pace(session, n, attempt, pipeline.SEND_WHATSAPP)
        assert await _rescheduled(session, attempt) == []
    finally:
        server.stop()


async def test_an_unreachable_limiter_is_waited_out(client, session, monkeypatch):
    tenant = await make_tenant(client)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    monkeypatch.setattr(sending, "limiter", lambda: RedisLimiter(dead, "t"))
    n, attempt = _work(tenant["id"])
    assert await sending._pace(session, n, attempt, pipeline.SEND_WHATSAPP) is False
    (item,) = await _rescheduled(session, attempt)
    assert item.state == "pending" and item.kind == pipeline.SEND_WHATSAPP
