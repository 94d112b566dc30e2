"""Rendering tenant templates out of process, within a budget of time, memory and output.

Jinja's sandbox keeps templates away from Python objects, but not from the CPU or the heap: nested
loops spin for minutes and `~` concatenation doubles a string until the process runs out of memory,
and neither can be intercepted in process. So renders run in one small child process per worker
process (render_child.py: only jinja2 imported, about 20 MB resident), spawned on the first render,
behind RLIMIT_AS and RLIMIT_CPU. The worker awaits it over pipes, so its event loop never blocks.

A render that passes RENDER_TIMEOUT_SECONDS is cut off (the child is killed and replaced on the next
render). A render over budget, in time, memory or output, fails for good: the template version (its
exact sources) is remembered as over budget, so later notifications fail at once instead of costing
another RENDER_TIMEOUT_SECONDS each. Renders take turns on the child, so the most another tenant's
render waits behind a hostile template is RENDER_TIMEOUT_SECONDS (plus a respawn) per hostile
template version met for the first time.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import json
import sys
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

RENDER_TIMEOUT_SECONDS = 2.0
CPU_SECONDS = 2.0
MEMORY_BYTES = 256 * 1024 * 1024
MAX_OUTPUT_CHARS = 512 * 1024  # subject, text and html together
SPAWN_TIMEOUT_SECONDS = 15.0
_CHILD = Path(__file__).with_name("render_child.py")
_OVER_BUDGET: dict[str, str] = {}  # sources digest -> why; bounded below


class RenderFailed(Exception):
    """The template cannot be rendered: `budget` (over time, memory or output) or `refused` (the sandbox
    refused it, a variable is missing, or the template raised)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message

    @property
    def error_class(self) -> str:
        return "render_budget" if self.kind == "budget" else "render_failed"


def _digest(fields: Mapping[str, str | None]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _remember(key: str, message: str) -> None:
    if len(_OVER_BUDGET) > 10_000:
        _OVER_BUDGET.clear()
    _OVER_BUDGET[key] = message


class _Renderer:
    """One child process and the turn-taking around it, for one event loop."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.lock = asyncio.Lock()

    async def _spawn(self) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            str(_CHILD),
            str(MEMORY_BYTES),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=8 * MAX_OUTPUT_CHARS + 65536,
        )  # one answer line: JSON of up to MAX_OUTPUT_CHARS characters
        try:
            ready = await asyncio.wait_for(proc.stdout.readline(), SPAWN_TIMEOUT_SECONDS)  # type: ignore[union-attr]
        except TimeoutError:
            ready = b""
        if not ready.startswith(b'{"ready"'):
            self._kill(proc)
            raise RuntimeError("the template renderer did not start")
        return proc

    @staticmethod
    def _kill(proc: asyncio.subprocess.Process | None) -> None:
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    async def render(self, key: str, fields: dict[str, str | None], values: dict[str, str]) -> dict[str, str | None]:
        request = (
            json.dumps(
                {"fields": fields, "values": values, "max_output": MAX_OUTPUT_CHARS, "cpu_seconds": CPU_SECONDS}
            ).encode()
            + b"\n"
        )
        async with self.lock:
            if key in _OVER_BUDGET:  # found out while this render waited its turn: don't spend another timeout
                raise RenderFailed("budget", _OVER_BUDGET[key])
            if self.proc is None or self.proc.returncode is not None:
                self.proc = await self._spawn()
            proc = self.proc
            try:
                proc.stdin.write(request)  # type: ignore[union-attr]
                await proc.stdin.drain()  # type: ignore[union-attr]
                line = await asyncio.wait_for(proc.stdout.readline(), RENDER_TIMEOUT_SECONDS)  # type: ignore[union-attr]
            except TimeoutError:
                self._drop(proc)
                message = f"the render took longer than {RENDER_TIMEOUT_SECONDS:g} s"
                _remember(key, message)
                raise RenderFailed("budget", message) from None
            except (ConnectionError, ValueError):  # the pipe broke, or a line past the reader's limit
                self._drop(proc)
                raise RenderFailed("budget", "the render is over its memory or output budget") from None
            if not line:  # killed by its own limits (SIGXCPU) or exited after a MemoryError
                self._drop(proc)
                raise RenderFailed("budget", "the render is over its CPU or memory budget")
            answer = json.loads(line)
            if answer.get("exiting"):  # it starts the next render from a clean heap, in a new process
                self._drop(proc)
        if "ok" in answer:
            rendered: dict[str, str | None] = answer["ok"]  # the child's JSON line (render_child.py)
            return rendered
        raise RenderFailed(answer["error"], answer["message"])

    def _drop(self, proc: asyncio.subprocess.Process) -> None:
        self._kill(proc)
        if self.proc is proc:
            self.proc = None


_renderers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Renderer] = weakref.WeakKeyDictionary()


def _renderer() -> _Renderer:
    loop = asyncio.get_running_loop()
    renderer = _renderers.get(loop)
    if renderer is None:
        renderer = _renderers[loop] = _Renderer()
    return renderer


async def render(fields: dict[str, str | None], values: Mapping[str, Any]) -> dict[str, str | None]:
    """Render every field of one template; RenderFailed when it cannot be, now or ever for these sources."""
    key = _digest(fields)
    if key in _OVER_BUDGET:
        raise RenderFailed("budget", _OVER_BUDGET[key])
    try:
        return await _renderer().render(key, fields, {k: str(v) for k, v in values.items()})
    except RenderFailed as exc:
        if exc.kind == "budget":
            _remember(key, exc.message)
        raise


def child_pids() -> list[int]:
    """Process ids of the running renderer children (for tests and diagnostics)."""
    return [r.proc.pid for r in list(_renderers.values()) if r.proc is not None and r.proc.returncode is None]


def _stop_all() -> None:
    for r in list(_renderers.values()):
        _Renderer._kill(r.proc)


atexit.register(_stop_all)
