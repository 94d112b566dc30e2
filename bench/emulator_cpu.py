"""Emulator CPU per notification: `notifygw emulator` alone, its status callbacks included (issue 13).

    .venv/bin/python bench/emulator_cpu.py                    # 2,000 WhatsApp messages, 16 at a time
    .venv/bin/python bench/emulator_cpu.py --count 500 --concurrency 32
    .venv/bin/python bench/emulator_cpu.py --profile /tmp/emu.prof   # the emulator under cProfile

Starts the emulator as its own process on a free port, and in this process a minimal callback sink
(raw asyncio HTTP/1.1, keep-alive, answers 204) and an aiohttp client. Makes an account, opens the
24-hour window of a few users with inbound messages (control API), warms up, then sends `--count`
free-form WhatsApp messages (POST /2010-04-01/Accounts/{sid}/Messages.json, StatusCallback to the
sink) and waits until every callback arrived (queued, sent, delivered, read: 4 per message). Prints
the emulator process's CPU (utime + stime from /proc/<pid>/stat) over that phase per notification,
callbacks included. Afterwards every callback's X-Twilio-Signature is checked with the official
validator and each message's statuses in order, so a faster emulator cannot be a wrong one.
Target: <= 3 ms of CPU per notification. The machine is shared: CPU time is the figure, not wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import parse_qsl

import aiohttp
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
PY = sys.executable
NOTIFYGW = Path(PY).parent / "notifygw"
TICKS = os.sysconf("SC_CLK_TCK")
STATUSES = ["queued", "sent", "delivered", "read"]
TARGET_MS = 3.0
# The same uvicorn.run as `notifygw emulator`, under cProfile; SIGINT makes uvicorn return, then stats are dumped.
PROFILED = """
import cProfile, sys, time, uvicorn
from channels.emulator import create_emulator_app
app = create_emulator_app()
profiler = cProfile.Profile(time.process_time)  # CPU time: neither waits nor other processes' turns count
profiler.enable()
try:
    uvicorn.run(app, host=sys.argv[1], port=int(sys.argv[2]), access_log=False, log_config=None)
finally:
    profiler.disable()
    profiler.dump_stats(sys.argv[3])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (fields 14 and 15 of /proc/<pid>/stat; the name may hold spaces)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_load() -> str:
    one, five, _ = Path("/proc/loadavg").read_text().split()[:3]
    return f"load average {one} (1 min) / {five} (5 min) on {os.cpu_count()} CPUs"


class Sink:
    """A callback receiver that costs as little as possible: parse the head, read the body, answer 204."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.changed = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                headers[":path"] = lines[0].split(" ")[1]
                self.received.append((headers, body))
                self.changed.set()
                close = headers.get("connection", "").lower() == "close"
                writer.write(b"HTTP/1.1 204 No Content\r\n" + (b"Connection: close\r\n" if close else b"") + b"\r\n")
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the emulator hung up, or the run is over
        finally:
            writer.close()

    async def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 1.0))
        return True


def start_emulator(port: int, profile: str | None, code: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    if profile:
        cmd = [PY, "-c", PROFILED, HOST, str(port), profile]
    elif NOTIFYGW.exists():
        cmd = [str(NOTIFYGW), "emulator", "--host", HOST, "--port", str(port)]
    else:
        cmd = [PY, "-m", "app.cli", "emulator", "--host", HOST, "--port", str(port)]
    # Its log goes to a file: under load, a terminal that cannot keep up would slow the emulator down.
    log = tempfile.NamedTemporaryFile(prefix="emulator_cpu-", suffix=".log", delete=False)  # noqa: SIM115
    print(f"emulator log: {log.name}")
    return subprocess.Popen(cmd, cwd=code, env=env, stdout=log, stderr=log, start_new_session=True)


async def wait_up(http: aiohttp.ClientSession, base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the emulator exited with {proc.returncode}")
        try:
            async with http.get(f"{base}/_emulator/status") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the emulator did not start within 60 s")


async def send_all(
    http: aiohttp.ClientSession,
    base: str,
    account: dict[str, str],
    users: list[str],
    count: int,
    concurrency: int,
    callback: str,
) -> list[str]:
    url = f"{base}/2010-04-01/Accounts/{account['account_sid']}/Messages.json"
    token = base64.b64encode(f"{account['api_key_sid']}:{account['api_key_secret']}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    sids: list[str] = []
    next_index = iter(range(count))

    async def one_sender() -> None:
        for i in next_index:
            form = {
                "To": f"whatsapp:{users[i % len(users)]}",
                "From": account["whatsapp_from"],
                "Body": f"Your parcel {i} is on its way",
                "StatusCallback": f"{callback}?n={i}",
            }
            async with http.post(url, data=form, headers=headers) as response:
                body = await response.json()
                if response.status != 201:
                    raise RuntimeError(f"create answered {response.status}: {body}")
                sids.append(body["sid"])

    await asyncio.gather(*(one_sender() for _ in range(concurrency)))
    return sids


async def wait_idle(http: aiohttp.ClientSession, base: str, timeout: float) -> int:
    """Poll (sparingly: each poll is emulator CPU) until no callback work is left; the last count seen."""
    deadline = time.monotonic() + timeout
    while True:
        async with http.get(f"{base}/_emulator/status") as response:
            pending = int((await response.json())["pending_tasks"])
        if pending == 0 or time.monotonic() > deadline:
            return pending
        await asyncio.sleep(0.25)


async def failed_deliveries(http: aiohttp.ClientSession, base: str, account_sid: str) -> dict[str, int]:
    """What the emulator recorded of callbacks that did not end in a 2xx (timeouts under load show here)."""
    async with http.get(f"{base}/_emulator/twilio/messages", params={"account_sid": account_sid}) as response:
        messages = (await response.json())["messages"]
    failed: dict[str, int] = defaultdict(int)
    for message in messages:
        for delivery in message["callbacks"]:
            if not (delivery["response_status"] and 200 <= delivery["response_status"] < 300):
                last = delivery["attempts"][-1] if delivery["attempts"] else {}
                failed[str(last.get("status_code") or last.get("error", "no attempt"))[:80]] += 1
    return dict(failed)


def check(
    received: list[tuple[dict[str, str], bytes]], auth_token: str, callback_base: str, sids: set[str]
) -> list[str]:
    """Every callback signed right, and each message's statuses in the order the emulator promises."""
    validator = RequestValidator(auth_token)
    problems: list[str] = []
    seen: dict[str, list[str]] = defaultdict(list)
    for headers, body in received:
        params = dict(parse_qsl(body.decode()))
        url = callback_base + headers[":path"]
        if not validator.validate(url, params, headers.get("x-twilio-signature", "")):
            problems.append(f"bad signature on {params.get('MessageSid')} {params.get('MessageStatus')}")
        seen[params.get("MessageSid", "?")].append(params.get("MessageStatus", "?"))
    for message_sid in sids:
        if seen.get(message_sid) != STATUSES:
            problems.append(f"{message_sid}: statuses {seen.get(message_sid)}")
    return problems


async def run(args: argparse.Namespace) -> int:
    sink = Sink()
    server = await asyncio.start_server(sink.handle, HOST, 0, backlog=4096)
    sink_port = server.sockets[0].getsockname()[1]
    callback_base = f"http://{HOST}:{sink_port}"
    callback = f"{callback_base}/twilio/status"
    port = free_port()
    base = f"http://{HOST}:{port}"
    proc = start_emulator(port, args.profile, Path(args.code).resolve())
    connector = aiohttp.TCPConnector(limit=args.concurrency + 4)
    try:
        async with aiohttp.ClientSession(connector=connector) as http:
            await wait_up(http, base, proc)
            async with http.post(f"{base}/_emulator/twilio/accounts", json={}) as response:
                account = await response.json()
            users = [f"+1555{7000000 + i:07d}" for i in range(args.users)]
            for user in users:  # each user writes in first, so free-form messages are inside the window
                payload = {"account_sid": account["account_sid"], "from": user, "body": "Hi"}
                async with http.post(f"{base}/_emulator/twilio/inbound", json=payload) as response:
                    if response.status != 200:
                        raise RuntimeError(f"inbound answered {response.status}: {await response.text()}")

            warm = await send_all(http, base, account, users, args.warmup, args.concurrency, callback)
            if not await sink.wait_for(len(warm) * len(STATUSES), args.timeout):
                raise RuntimeError("warm-up callbacks did not all arrive")
            await asyncio.sleep(0.5)
            sink.received.clear()

            cpu_before, t_before = cpu_seconds(proc.pid), time.monotonic()
            sids = await send_all(http, base, account, users, args.count, args.concurrency, callback)
            t_sent = time.monotonic()
            arrived = await sink.wait_for(args.count * len(STATUSES), args.timeout)
            t_after = time.monotonic()
            pending = await wait_idle(
                http, base, args.timeout if arrived else 5
            )  # a lifecycle's last work is after its last POST
            cpu_after = cpu_seconds(proc.pid)
            failed = await failed_deliveries(http, base, account["account_sid"])
            if not arrived:
                print(f"TIMEOUT: {len(sink.received):,} of {args.count * len(STATUSES):,} callbacks arrived")
            problems = check(sink.received, account["auth_token"], callback_base, set(sids))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        await asyncio.sleep(0.2)  # the sink sees the emulator's connections end
        server.close()
        await server.wait_closed()

    cpu = cpu_after - cpu_before
    per_ms = cpu / args.count * 1000
    wall = t_after - t_before
    print(
        f"## Emulator CPU ({args.count:,} WhatsApp messages, {args.concurrency} at a time, {len(STATUSES)} callbacks each)"
    )
    print(f"machine: {machine_load()} (measured at the end)")
    print(
        f"sent in {t_sent - t_before:.1f} s, last callback after {wall:.1f} s "
        f"({args.count / wall:.0f} notifications/s wall); callbacks received {len(sink.received):,}; pending after: {pending}"
    )
    print(
        f"emulator CPU {cpu:.2f} s -> {per_ms:.2f} ms per notification (callbacks included); target <= {TARGET_MS} ms"
    )
    print(
        f"checks: {'all signatures valid, every message queued -> sent -> delivered -> read' if not problems else ''}"
    )
    for problem in problems[:10]:
        print("  PROBLEM:", problem)
    verdict = "MET" if per_ms <= TARGET_MS and arrived and not problems and not failed else "MISSED"
    print(f"verdict: {verdict}")
    if args.profile:
        print(f"profile written to {args.profile} (python -m pstats {args.profile})")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "count": args.count,
                    "cpu_s": cpu,
                    "cpu_ms_per_notification": per_ms,
                    "wall_s": wall,
                    "verdict": verdict,
                    "problems": problems[:10],
                }
            )
        )
    return 0 if arrived and not problems and not failed else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--users", type=int, default=20, help="distinct recipients, each with an open window")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the callbacks")
    parser.add_argument("--profile", help="run the emulator under cProfile and write its stats here")
    parser.add_argument(
        "--code",
        default=str(ROOT),
        help="run the emulator from this source tree (e.g. `git archive <rev> app channels | tar -x -C DIR`), for before/after",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
