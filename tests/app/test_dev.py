"""`notifygw dev` for real: a subprocess in a temp dir, its printed commands run as printed, and restarts.

The subprocess gets none of the suite's NOTIFYGW_* variables: it must work from nothing, as `make dev`
does on a fresh clone (SQLite in ./.notifygw, in-process queue, the emulator in the same server).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

START_TIMEOUT = 90.0  # first start migrates a fresh SQLite database
SETTLE_TIMEOUT = 30.0
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dev_env() -> dict[str, str]:
    leaking = ("TWILIO_EDGE", "TWILIO_REGION", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "SENDGRID_API_KEY")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFYGW_") and k not in leaking}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def notifygw() -> list[str]:
    script = Path(sys.executable).with_name("notifygw")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def wait_for(fn: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


@dataclass
class Dev:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def banner(self) -> str:
        out = self.output()
        return out[: out.index("starts over.)") + len("starts over.)")]

    def block(self, start: str, end: str) -> str:
        """The banner's lines from the one starting with `start` up to (not including) the one starting with `end`."""
        lines = self.banner().splitlines()
        first = next(i for i, line in enumerate(lines) if line.strip().startswith(start))
        last = next(i for i, line in enumerate(lines) if i > first and line.strip().startswith(end))
        return "\n".join(lines[first:last])

    def value(self, label: str) -> str:
        match = re.search(rf"{re.escape(label)}\s*(\S+)", self.banner())
        assert match, f"{label!r} not in the banner"
        return match.group(1)


def start_dev(cwd: Path, port: int) -> Dev:
    log = cwd / f"dev-{port}.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [*notifygw(), "dev", "--port", str(port)],
            cwd=cwd,
            env=dev_env(),
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    dev = Dev(proc, f"http://127.0.0.1:{port}", log)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"notifygw dev exited with {proc.returncode}:\n{dev.output()[-4000:]}")
        try:
            return "starts over.)" in dev.output() and httpx.get(f"{dev.base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, START_TIMEOUT, "notifygw dev to be ready")
    except BaseException:
        stop_dev(dev)
        raise
    return dev


def stop_dev(dev: Dev) -> None:
    if dev.proc.poll() is None:
        dev.proc.send_signal(signal.SIGINT)
        try:
            dev.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            dev.proc.kill()
            dev.proc.wait(timeout=10)


@pytest.fixture
def devs() -> Iterator[list[Dev]]:
    started: list[Dev] = []
    yield started
    for dev in started:
        stop_dev(dev)


def run_printed(dev: Dev, script: str, names: list[str]) -> dict[str, str]:
    """Run the banner's commands as a newcomer pastes them (bash, curl, sed) and return the ids they echo.

    Without curl, make the same requests (URL, headers and JSON bodies taken from the banner) with httpx.
    """
    if shutil.which("curl") and shutil.which("bash"):
        tail = "".join(f'\nprintf "ID {n} %s\\n" "${n}"' for n in names)
        done = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + script + tail],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=dev.log.parent,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        found = dict(re.findall(r"^ID (\w+) (\S*)$", done.stdout, re.M))
    else:
        found, send_key = {}, dev.value("send key:")
        for line in script.splitlines():
            if line.strip().startswith("until "):  # the banner waits for the window to open
                phone = "+" + re.search(r"phone=%2B(\d+)", line).group(1)
                wait_for(
                    lambda: (
                        '"window_open":true'
                        in httpx.get(
                            dev.base + "/v1/contacts",
                            params={"phone": phone},
                            headers={"Authorization": f"Bearer {send_key}"},
                            timeout=5,
                        ).text
                    ),
                    SETTLE_TIMEOUT,
                    "the window to open",
                )
            elif match := re.search(r"\"\$NGW(/[^\"]+)\".*?-d '(\{.*\})'", line):
                path, body = match.groups()
                headers = {} if path.startswith("/_emulator") else {"Authorization": f"Bearer {send_key}"}
                r = httpx.post(dev.base + path, json=json.loads(body), headers=headers, timeout=10)
                assert r.status_code < 300, r.text
            elif match := re.search(r"-d '(\{.*\})'", line):
                r = httpx.post(
                    f"{dev.base}/v1/notifications",
                    json=json.loads(match.group(1)),
                    timeout=10,
                    headers={"Authorization": f"Bearer {send_key}"},
                )
                assert r.status_code == 202, r.text
                found[names[len(found)]] = r.json()["id"]
    for name in names:
        assert re.fullmatch(r"[0-9a-f-]{36}", found.get(name, "")), f"{name} is not an id: {found}"
    return found


def read(dev: Dev, notification_id: str) -> dict[str, Any]:
    r = httpx.get(
        f"{dev.base}/v1/notifications/{notification_id}",
        timeout=5,
        headers={"Authorization": f"Bearer {dev.value('send key:')}"},
    )
    assert r.status_code == 200, r.text
    return r.json()


def settled(dev: Dev, notification_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    return wait_for(
        lambda: (lambda n: n if done(n) else None)(read(dev, notification_id)),
        SETTLE_TIMEOUT,
        f"notification {notification_id} to settle",
    )


def steps(n: dict[str, Any]) -> list[tuple[str, str]]:
    return [(d["step"], d["result"]) for d in n["decisions"]]


def check_template_delivered(dev: Dev, notification_id: str) -> None:
    n = settled(dev, notification_id, lambda n: n["status"] in ("delivered", "read"))
    assert n["channel"] == "whatsapp"
    assert [(a["channel"], a["kind"]) for a in n["attempts"]] == [("whatsapp", "template")]
    assert ("consent", "granted") in steps(n) and ("send", "template") in steps(n)
    assert {"delivered", "read"} & {e["status"] for e in n["events"]}


def check_text_fell_back(dev: Dev, notification_id: str) -> None:
    n = settled(dev, notification_id, lambda n: n["channel"] == "email" and n["status"] in ("sent", "delivered"))
    assert ("window", "closed") in steps(n) and ("fallback", "email") in steps(n)
    assert [(a["channel"], a["kind"]) for a in n["attempts"]] == [("email", "email")]
    assert n["attempts"][0]["provider_message_id"]


def check_text_on_whatsapp(dev: Dev, notification_id: str) -> None:
    n = settled(dev, notification_id, lambda n: n["status"] in ("delivered", "read"))
    assert n["channel"] == "whatsapp", n
    assert ("window", "open") in steps(n) and ("send", "session") in steps(n)
    assert [(a["channel"], a["kind"]) for a in n["attempts"]] == [("whatsapp", "session")]


def check_up(dev: Dev) -> None:
    assert httpx.get(f"{dev.base}/healthz", timeout=5).status_code == 200
    assert httpx.get(f"{dev.base}/readyz", timeout=5).status_code == 200


def test_dev_demo_works_as_printed_and_survives_restarts(tmp_path: Path, devs: list[Dev]) -> None:
    # First start: everything is created.
    devs.append(first := start_dev(tmp_path, free_port()))
    check_up(first)
    demo_file = tmp_path / ".notifygw" / "demo.json"
    assert stat.S_IMODE(demo_file.stat().st_mode) == 0o600
    demo = json.loads(demo_file.read_text())
    assert demo["send_key"] == first.value("send key:") and demo["admin_key"] == first.value("admin key:")
    assert demo["sendgrid"]["event_webhook_private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert f"{first.base}/webhooks/sendgrid/{demo['tenant_id']}" in first.banner()

    ids = run_printed(first, first.block("export NGW", "# 3."), ["N1", "N2"])
    check_template_delivered(first, ids["N1"])
    check_text_fell_back(first, ids["N2"])
    # Step 3 of the banner GETs exactly these.
    assert '"$NGW/v1/notifications/$N1"' in first.block("# 3.", "# 4.")
    stop_dev(first)

    # Restart (on another port: every callback URL must follow): the same demo, the emulator re-seeded.
    devs.append(second := start_dev(tmp_path, free_port()))
    check_up(second)
    assert json.loads(demo_file.read_text()) == demo
    for label in ("Demo tenant", "admin key:", "send key:", "Twilio (emulated):   account"):
        assert second.value(label) == first.value(label)
    ids = run_printed(second, second.block("export NGW", "# 3."), ["N1", "N2"])
    check_template_delivered(second, ids["N1"])
    check_text_fell_back(second, ids["N2"])

    # Step 4: the demo user writes in, and the same text goes on WhatsApp.
    script = second.block("export NGW", "# 1.") + "\n" + second.block("# 4.", "What the emulator")
    script = "\n".join(line for line in script.splitlines() if "json.tool" not in line)
    ids = run_printed(second, script, ["N3"])
    check_text_on_whatsapp(second, ids["N3"])
    stop_dev(second)

    # Another restart: the gateway remembers the open window, and so must the re-seeded emulator.
    devs.append(third := start_dev(tmp_path, free_port()))
    ids = run_printed(third, third.block("export NGW", "# 3."), ["N1", "N2"])
    check_template_delivered(third, ids["N1"])
    check_text_on_whatsapp(third, ids["N2"])


def test_idempotency_key_on_a_reloaded_key_answers_at_once(tmp_path: Path, devs: list[Dev]) -> None:
    """Issue 11, §2: reloading a key (and writing its last_used_at) happens in the request's unit of work.

    The Idempotency-Key claim used to open a second session: on SQLite, whose units of work begin with
    BEGIN IMMEDIATE, it waited on the request's own write lock for busy_timeout (10 s), then answered
    503 "database unavailable". Now the claim is in the request's session, and both answer 202.
    """
    from tenants.auth import KEY_CACHE_TTL

    devs.append(dev := start_dev(tmp_path, free_port()))
    headers = {"Authorization": f"Bearer {dev.value('send key:')}"}
    body = {"to": {"email": "demo@example.com"}, "text": "hello"}
    url = f"{dev.base}/v1/notifications"
    # First use: the key is loaded in the request's session (a cache miss), then the claim.
    first = httpx.post(url, json=body, headers={**headers, "Idempotency-Key": "first"}, timeout=30)
    assert first.status_code == 202, first.text
    # Once the cached key has expired, the next request reloads it and writes last_used_at (never
    # written before) in the same session, ahead of the claim.
    time.sleep(KEY_CACHE_TTL + 0.5)
    second = httpx.post(url, json=body, headers={**headers, "Idempotency-Key": "second"}, timeout=30)
    assert second.status_code == 202, second.text
    replay = httpx.post(url, json=body, headers={**headers, "Idempotency-Key": "second"}, timeout=30)
    assert replay.status_code == 202 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == second.json()["id"] != first.json()["id"]
    import sqlite3

    public_id = dev.value("send key:").split("_")[2]
    with sqlite3.connect(tmp_path / ".notifygw" / "notifygw.db") as conn:
        (last_used,) = conn.execute("SELECT last_used_at FROM api_keys WHERE public_id = ?", (public_id,)).fetchone()
    assert last_used is not None, "the scenario must include the last_used_at write"
