"""Row 9: encryption key rotation during sends, then the old key removed.

The documented procedure, under load: with sends in flight, every process is restarted (rolling,
behind a loopback proxy for the API so no status callback is refused) with "new,old"; `notifygw keys
rotate` re-encrypts every secret under the new key; every process is restarted again with the new
key only. Pass: 0 decryption failures: every notification completes, every status callback is
accepted, no process logs a decryption error, and no secret is left under the old key.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter

import sqlalchemy as sa

from app.core.config import new_encryption_key_entry
from app.core.db import session_factory
from tenants.credentials.rotation import encrypted_columns
from tests.faults.support import (
    BIN,
    REPO,
    Stack,
    TcpProxy,
    battery_tenant,
    free_port,
    notification_body,
    post_many,
    report,
    scale,
    sends_per_notification,
    stop_group,
    until_sending,
    wait_terminal,
)

FAILURE_MARKERS = ("decrypt", "InvalidTag", "Traceback", "unknown key", "ERROR")


async def test_key_rotation_during_sends(client, emulator, tmp_path):
    count = scale(1000, 30)
    started = time.monotonic()
    old = os.environ["NOTIFYGW_ENCRYPTION_KEYS"]
    new = new_encryption_key_entry("k2")
    lb = TcpProxy(free_port())  # the API's public address; re-pointed at each new API process
    stack = Stack(tmp_path, "f09", NOTIFYGW_PUBLIC_BASE_URL=f"http://{lb.url_host}")
    retired: list[subprocess.Popen] = []

    def roll_api(keys: str) -> None:
        previous = stack.api
        stack.api_port = free_port()
        stack.api_url = f"http://127.0.0.1:{stack.api_port}"
        stack.start_api(NOTIFYGW_ENCRYPTION_KEYS=keys)
        lb.target_port = stack.api_port
        if previous is not None:
            retired.append(previous)
            stop_group(previous, signal.SIGTERM)

    def roll_worker(keys: str) -> None:
        previous = list(stack.workers)
        stack.start_worker(threads=8, NOTIFYGW_ENCRYPTION_KEYS=keys)
        for proc in previous:
            stack.stop_worker(proc, signal.SIGTERM, timeout=90)

    try:
        t = await battery_tenant(client, emulator, f"http://{lb.url_host}")  # secrets stored under the old key
        emulator.configure(response_latency_seconds=0.1)
        lb.start()
        roll_api(old)
        ids = await post_many(f"http://{lb.url_host}", t.sender, [notification_body(i) for i in range(count)])
        roll_worker(old)
        await until_sending()
        roll_worker(f"{new},{old}")
        roll_api(f"{new},{old}")
        rotated = subprocess.run(
            [str(BIN / "notifygw"), "keys", "rotate"],
            cwd=REPO,
            capture_output=True,
            text=True,
            env={**stack.env, "NOTIFYGW_ENCRYPTION_KEYS": f"{new},{old}"},
            timeout=120,
        )
        assert rotated.returncode == 0, rotated.stderr
        roll_worker(new)
        roll_api(new)
        counts = await wait_terminal(ids, timeout=scale(1200, 180), emulator=emulator)
        logs = stack.logs()
    finally:
        stack.close()
        for proc in retired:
            stop_group(proc, signal.SIGKILL)
        lb.stop()
        emulator.configure(response_latency_seconds=0.0)

    async with session_factory()() as s:
        not_under_new = 0
        for table, column in encrypted_columns():
            not_under_new += (
                await s.execute(
                    sa.select(sa.func.count())
                    .select_from(table)
                    .where(column.is_not(None), sa.not_(column.like(f"{new.split(':')[0]}:%")))
                )
            ).scalar_one()
    callback_codes = Counter(
        cb["response_status"] for m in emulator.messages(account_sid=t.account["account_sid"]) for cb in m["callbacks"]
    )
    failures = [line for line in logs.splitlines() if any(m in line for m in FAILURE_MARKERS)]
    per = sends_per_notification(emulator, t.account["account_sid"])
    report(
        9,
        "encryption key rotation during sends, then the old key removed",
        notifications=count,
        rotate_output=rotated.stdout.strip(),
        secrets_not_under_new_key=not_under_new,
        callback_codes=dict(callback_codes),
        decryption_failures_in_logs=len(failures),
        statuses=dict(counts),
        twilio_messages=sum(per.values()),
        wall_seconds=round(time.monotonic() - started, 1),
    )
    assert not failures, failures[:10]
    assert not_under_new == 0
    assert set(callback_codes) <= {200, 204}, callback_codes
    assert sum(counts.values()) == count and set(counts) <= {"read", "delivered"}, counts
    assert set(per) == set(ids) and set(per.values()) == {1}
