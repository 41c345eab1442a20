"""Fixtures of the browser tests, on the harness in tests/browser/harness.py.

- `live_server`: pytest-django's live server (transactional database), on a loopback port in
  BROWSER_TEST_PORTS (18400-18499 by default).
- `browser` (per module) and `page` (per test): Chromium at /usr/bin/chromium with a fresh
  profile; `page_problems` collects console errors, CSP refusals, page errors and failed
  requests, so a journey can assert there were none.
- `celery_worker`: a real Celery worker subprocess on the test database and the same Redis;
  override `celery_worker_options` in a module to change beat or add modules.

Browser tests are marked `browser` (`pytestmark = pytest.mark.browser`) and skip, saying why,
only when Chromium is absent.
"""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_django.live_server_helper import LiveServer

from tests.browser.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    async_unsafe_allowed,
    live_server_on_a_free_port,
    open_page,
    start_worker,
    stop_worker,
)


@pytest.fixture(scope="session")
def live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """pytest-django's live server, on the first free port of our loopback range."""
    server = live_server_on_a_free_port()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, driven by Playwright, for one test module (a fresh temporary profile)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with async_unsafe_allowed():
        playwright = sync_playwright().start()
        try:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
        finally:
            playwright.stop()


@pytest.fixture
def page_problems() -> list[str]:
    """What went wrong in the page: console errors (CSP refusals among them), exceptions, failed loads."""
    return []


@pytest.fixture
def page(browser: Any, live_server: LiveServer, page_problems: list[str]) -> Iterator[Any]:
    """A fresh browser context and page at desktop size, with relative URLs on the live server."""
    with open_page(browser, live_server.url, page_problems) as tab:
        yield tab


@pytest.fixture
def celery_worker_options() -> dict[str, Any]:
    """Override in a test module: `beat` (run the periodic schedule), `include` (extra task modules)
    and `env` (extra environment variables of the worker, e.g. shorter sweep intervals)."""
    return {"beat": True, "include": [], "env": {}}


@pytest.fixture
def celery_worker(
    live_server: LiveServer, celery_worker_options: dict[str, Any], tmp_path: Path
) -> Iterator[str]:
    """A real Celery worker process on the test database and Redis; yields its node name."""
    name = f"browser-{uuid.uuid4().hex[:8]}@localhost"
    process = start_worker(name, celery_worker_options, tmp_path)
    try:
        yield name
    finally:
        stop_worker(process)
