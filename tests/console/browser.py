"""Headless Debian Chromium for the console tests, kept off the network.

Playwright for Python drives /usr/bin/chromium (the Debian package, installed by .ci/services); no
test downloads a browser. Every host but 127.0.0.1 resolves to nothing and any other traffic goes to a
closed proxy port, so a page that reached for a CDN would fail here.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
OFFLINE_FLAGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=127.0.0.1",
]


@asynccontextmanager
async def browser_page(base_url: str, shots: Path) -> AsyncIterator[Any]:
    """A fresh page on the gateway; on a failure inside, a full-page screenshot is left in `shots`."""
    from playwright.async_api import async_playwright

    args = [*OFFLINE_FLAGS, *(["--no-sandbox"] if os.geteuid() == 0 else [])]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            context = await browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 800})
            page = await context.new_page()
            page.set_default_timeout(15_000)
            page.on("dialog", lambda dialog: dialog.accept())  # the confirm() before a revoke
            try:
                yield page
            except BaseException:
                shots.mkdir(parents=True, exist_ok=True)
                path = shots / "failure.png"
                await page.screenshot(path=str(path), full_page=True)
                print(f"console test failed; screenshot at {path}")
                raise
        finally:
            await browser.close()


async def shot(page: Any, name: str) -> None:
    """With NOTIFYGW_CONSOLE_SHOTS=<dir> (e.g. docs/console), keep a picture of the page for the docs."""
    folder = os.environ.get("NOTIFYGW_CONSOLE_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


async def sign_in(page: Any, key: str) -> None:
    await page.goto("/console/sign-in")
    await page.fill("#key", key)
    await page.click("#sign-in")
    await page.wait_for_url("**/console/notifications")


async def sign_out(page: Any) -> None:
    await page.click("#sign-out")
    await page.wait_for_url("**/console/sign-in")
    # Signed out for real: a page behind the session sends us back to sign in.
    await page.goto("/console/api-keys")
    await page.wait_for_url("**/console/sign-in")
