"""Personal data stays out of error messages, logs and job arguments (issue 11, section 11)."""

from __future__ import annotations

import io
import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.core.db import session_factory
from app.core.logging import configure_logging

PHONE = "+14155550142"
EMAIL = "private.person@example.com"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT CAST(:phone AS integer), :email",  # refused by asyncpg, which quotes the value
        "SELECT CAST(CAST(:phone AS text) AS integer), :email",  # refused by PostgreSQL, which quotes it too
    ],
)
async def test_a_failed_statement_does_not_carry_its_parameters(database, sql):
    async with session_factory()() as s:
        with pytest.raises(DBAPIError) as caught:
            await s.execute(text(sql), {"phone": PHONE, "email": EMAIL})
    message = str(caught.value)
    assert "[SQL:" in message  # the statement is still there to debug with...
    assert PHONE not in message and EMAIL not in message  # ...its values are not


async def test_an_unhandled_database_error_logs_no_parameters(database):
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        async with session_factory()() as s:
            try:
                await s.execute(text("SELECT CAST(:phone AS integer)"), {"phone": PHONE})
            except DBAPIError:
                logging.getLogger("notifygw.errors").exception("unhandled error")
    finally:
        configure_logging("INFO")
    assert "unhandled error" in stream.getvalue()
    assert PHONE not in stream.getvalue()


def test_logs_redact_phone_numbers_and_emails_whatever_the_key():
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        logging.getLogger("notifygw.test").warning(
            f"send to whatsapp:{PHONE} failed for {EMAIL}", extra={"to": PHONE, "nested": {"x": [EMAIL]}}
        )
    finally:
        configure_logging("INFO")
    out = stream.getvalue()
    assert "send to whatsapp:" in out
    assert PHONE not in out and PHONE.lstrip("+") not in out and EMAIL not in out


def test_log_redaction_keeps_ids_and_timestamps():
    from app.core.logging import redact

    kept = "attempt 0dad5e04-2a97-41c2-a704-7fce841aa9d5 at 2026-12-01T21:35:57.900143Z took 1234 ms"
    assert redact(kept) == kept


def _redis_dump(redis_client, namespace: str) -> bytes:
    """Every key and value under this run's namespace, as bytes."""
    out = []
    for key in redis_client.scan_iter(match=f"{namespace}*", count=1000):
        kind = redis_client.type(key)
        out.append(key)
        if kind == b"hash":
            out += [b for pair in redis_client.hgetall(key).items() for b in pair]
        elif kind == b"list":
            out += redis_client.lrange(key, 0, -1)
        elif kind == b"zset":
            out += redis_client.zrange(key, 0, -1)
        elif kind == b"set":
            out += list(redis_client.smembers(key))
        elif kind == b"string":
            out.append(redis_client.get(key) or b"")
    return b"\n".join(out)


async def test_queued_jobs_carry_ids_not_personal_data(client, emulator, gateway, worker, redis_client):
    from tests.conftest import TEST_DB_NAME
    from tests.support.gateway import TEMPLATE_KEY, settle, wired_tenant

    t = await wired_tenant(client, emulator, gateway)
    worker.pause()  # every job stays in Redis, as sent
    try:
        r = await client.post(
            "/v1/notifications",
            headers=t.admin,
            json={
                "to": {"phone": PHONE, "email": EMAIL},
                "template": TEMPLATE_KEY,
                "variables": {"name": "Privatename", "order": "18473"},
                "metadata": {"ref": "private-meta"},
            },
        )
        assert r.status_code == 202
        emulator.inbound(
            t.account["account_sid"], from_=PHONE, body="private inbound body", profile_name="Privateprofile"
        )
        emulator.wait_idle()
        dump = _redis_dump(redis_client, TEST_DB_NAME)
        assert b"notifications" in dump or b"webhooks" in dump  # the jobs are there...
        for needle in (
            PHONE,
            PHONE.lstrip("+"),
            EMAIL,
            "Privatename",
            "private-meta",
            "private inbound body",
            "Privateprofile",
        ):
            assert needle.encode() not in dump, needle  # ...with ids only
    finally:
        worker.resume()
    await settle(emulator)
