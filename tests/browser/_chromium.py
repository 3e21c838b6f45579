"""Debian's Chromium driven by Playwright (browser downloads are impossible here).

``chromium_path()`` finds the binary that ``apt-get install chromium`` installs; without it
the browser tests skip with a message that says how to get it (``make bootstrap`` installs it
when it runs as root on Debian).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest

# Flags that keep Chromium from calling home on a closed network (and sandbox-less as root).
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
HOW_TO_GET = (
    "no Chromium installed: run `apt-get install -y chromium` (Debian; `make bootstrap` does "
    "it when run as root) or set DATASAFE_CHROMIUM to a Chromium binary"
)


def chromium_path() -> str | None:
    explicit = os.environ.get("DATASAFE_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


class ExternalRequests:
    """Every request the page made that left 127.0.0.1 (each one is aborted)."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def route(self, route: Any) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.urls.append(url)
            route.abort()


@contextmanager
def browser_page() -> Iterator[tuple[Any, ExternalRequests]]:
    """A fresh page whose every request off 127.0.0.1 is recorded and refused."""
    path = chromium_path()
    if path is None:
        pytest.skip(HOW_TO_GET)
    playwright_api = pytest.importorskip("playwright.sync_api")
    external = ExternalRequests()
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", external.route)
            yield page, external
        finally:
            browser.close()


def open_console(page: Any, console: Any) -> None:
    """Open a console's printed URL (with its token) and wait until it says who it is."""
    page.goto(console.url_with_token)
    page.wait_for_selector("#who:not(:has-text('Connecting'))")
    # the token left the address bar (kept in this tab's sessionStorage only)
    assert "#" not in page.url
