"""A real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

Pages only reach 127.0.0.1 and file: URLs; every other request is aborted, so
tests never touch the internet. Requests to other hosts are recorded in
``page.blocked_requests`` for tests that want to assert on them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

CHROMIUM = os.environ.get("NEWSLETTER_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_PREFIXES = ("file:", "data:", "about:", "http://127.0.0.1", "http://localhost")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One Chromium for the whole test session."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}; install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser):  # type: ignore[no-untyped-def]
    """Factory: ``new_page(width=375)`` opens a page of that width, offline but for localhost."""
    contexts = []

    def make(width: int = 1024, height: int = 900):  # type: ignore[no-untyped-def]
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.blocked_requests = []

        def route(route):  # type: ignore[no-untyped-def]
            url = route.request.url
            if url.startswith(LOCAL_PREFIXES):
                route.continue_()
            else:
                page.blocked_requests.append(url)
                route.abort()

        page.route("**/*", route)
        return page

    yield make
    for context in contexts:
        context.close()
