"""Browser tests: Debian's Chromium, driven headless by Playwright (Python), against ispbill
served by uvicorn on loopback in a thread of the test process: one server and one browser for
the module (Playwright's sync API keeps an event loop running in this thread while it is open, so
it is closed before the other test modules, which run their own loops). Screenshots go to ``artifacts/screenshots/`` (gitignored; CI keeps them)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from argon2 import PasswordHasher
from browser_support import (
    CARD_SECRET,
    CHROMIUM,
    CHROMIUM_ARGS,
    GARDEN_SECRET,
    SANDBOX_SECRET,
    Server,
)
from playwright.sync_api import Browser, Page, sync_playwright

from ispbill.adapters.db.migrate import upgrade
from ispbill.bootstrap import bootstrap
from ispbill.clock import FixedClock
from ispbill.entrypoints.asgi_app import create_app
from ispbill.settings import Settings
from ispbill.use_cases.admin import web_auth


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; scripts/system-deps.sh --test installs it")
        pytest.skip(f"{CHROMIUM} is missing (scripts/system-deps.sh --test installs it)")
    # cheap hashes for the test users (production keeps argon2-cffi's defaults)
    web_auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    database = tmp_path_factory.mktemp("browser") / "ispbill.db"
    url = f"sqlite:///{database}"
    upgrade(url)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    clock = FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    settings = Settings(
        database_url=url,
        sandbox_secret=SANDBOX_SECRET,
        refill_card_secret=CARD_SECRET,
        garden_secret=GARDEN_SECRET,
        public_base_url=base,
    )
    app = bootstrap(settings=settings, clock=clock)
    config = uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning")
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uvicorn_server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield Server(base, app, clock)
    finally:
        uvicorn_server.should_exit = True
        thread.join(timeout=10)
        app.close()


# Module scope, not session: Playwright's sync API keeps an event loop running in the main
# thread while it is open, and tests that run after the browser tests call asyncio.run().
@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="en-US")
    context.set_default_timeout(15_000)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()
