"""Plant canary secrets, run the main flows, then grep every log line and every raw database column."""

from __future__ import annotations

import io
import logging

from sqlalchemy import text

from app import models  # noqa: F401  (every table)
from app.core.db import Base, get_engine
from app.core.logging import json_formatter, redact
from tests.conftest import OPERATOR_TOKEN
from tests.support.gateway import notify, read, settle, wired_tenant


def test_redaction_covers_keys_and_values():
    event = {
        "authorization": "Basic QUM6dG9rZW4=",
        "x_twilio_signature": "abc",
        "nested": {"auth_token": "s3cret"},
        "message": "sent with key ngw_live_abcdefghijklmnop_" + "a" * 64 + "_0000000 and SG.abcdefghij.klmnopqrstu",
        "list": [{"api_key_secret": "x"}],
        "status": "ok",
    }
    out = redact(event)
    flat = str(out)
    for secret in ("QUM6dG9rZW4=", "s3cret", "ngw_live_abcdefghijklmnop", "SG.abcdefghij", "'abc'"):
        assert secret not in flat, secret
    assert out["status"] == "ok"


async def test_canary_secrets_never_reach_logs_or_clear_columns(client, emulator, gateway, worker):
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        t = await wired_tenant(client, emulator, gateway)
        await client.get("/v1/providers/twilio", headers=t.admin)
        await client.get("/v1/providers/sendgrid", headers=t.admin)
        nid = await notify(client, t)
        await notify(client, t, text="email me", to={"phone": "+14155550199", "email": "ava@example.com"})
        emulator.inbound(t.account["account_sid"], from_="+14155550123", body="STOP")
        await settle(emulator)
        assert (await read(client, t, nid))["status"] == "read"
        # Bad input carrying the secret must not echo it either.
        r = await client.put(
            "/v1/providers/twilio",
            headers=t.admin,
            json={"account_sid": t.account["account_sid"], "auth_token": " " + t.account["auth_token"]},
        )
        assert r.status_code == 422 and t.account["auth_token"] not in r.text
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)

    canaries = {
        "twilio auth token": t.account["auth_token"],
        "twilio api key secret": t.account["api_key_secret"],
        "sendgrid api key": t.sendgrid["api_key"],
        "tenant api key": t.admin["Authorization"].removeprefix("Bearer "),
        "operator token": OPERATOR_TOKEN,
    }
    logs = buffer.getvalue()
    assert len(logs.splitlines()) > 20, "the flows should have logged something"
    for name, secret in canaries.items():
        assert secret not in logs, f"{name} appears in the logs"

    async with get_engine().connect() as conn:
        dump = []
        for table in Base.metadata.sorted_tables:
            for row in (await conn.execute(text(f'SELECT * FROM "{table.name}"'))).all():
                dump.append(repr(tuple(row)))
    everything = "\n".join(dump)
    assert t.account["account_sid"] in everything  # the dump does contain the stored rows
    for name, secret in canaries.items():
        assert secret not in everything, f"{name} is stored in clear"
    api_key_secret_part = canaries["tenant api key"].split("_")[3]
    assert api_key_secret_part not in everything
