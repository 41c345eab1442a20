"""The browser-test harness: a live server, Debian's Chromium through Playwright, screenshots,
and a real Celery worker on the test database.

- `live_server`: pytest-django's live server (transactional database), on a loopback port in
  18400-18499.
- `browser` (per module) and `page` (per test): Chromium at /usr/bin/chromium with a fresh
  profile; `page_problems` collects console errors, CSP refusals, page errors and failed
  requests, so a journey can assert there were none.
- `screenshot(page, name, phone=False)`: a full-page PNG in docs/screenshots/.
- `celery_worker`: a `celery -A voltpark worker -P solo -B` subprocess on the test database and
  the same Redis; override `celery_worker_options` in a module to change beat or add modules.

Browser tests are marked `browser` (`pytestmark = pytest.mark.browser`) and skip, saying why,
only when Chromium is absent.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from pytest_django.live_server_helper import LiveServer

from tests.live import worker_environment

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The live server's loopback ports; BROWSER_TEST_PORTS ("18500-18549") moves them, so several
# checkouts on one machine can run the browser tests side by side.
_PORTS_FROM, _PORTS_TO = (int(p) for p in os.environ.get("BROWSER_TEST_PORTS", "18400-18499").split("-"))
PORTS = range(_PORTS_FROM, _PORTS_TO + 1)
SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WORKER_START_TIMEOUT_S = 30


@pytest.fixture(scope="session")
def live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """pytest-django's live server, on the first free port of our loopback range."""
    last_error: Exception | None = None
    for port in PORTS:
        try:
            server = LiveServer(f"127.0.0.1:{port}")
        except OSError as error:
            last_error = error
            continue
        yield server
        server.stop()
        return
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}: {last_error}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, driven by Playwright, for one test module (a fresh temporary profile)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running on this thread; the test's own database
    # calls are still synchronous, so Django's async-safety guard is lifted while it runs.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        _restore_env("DJANGO_ALLOW_ASYNC_UNSAFE", previous)


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@pytest.fixture
def page_problems() -> list[str]:
    """What went wrong in the page: console errors (CSP refusals among them), exceptions, failed loads."""
    return []


@contextmanager
def open_page(browser: Any, base_url: str, problems: list[str], **context_options: Any) -> Iterator[Any]:
    """A fresh browser context and page at desktop size whose problems are collected in `problems`."""
    context = browser.new_context(base_url=base_url, viewport=DESKTOP, **context_options)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.on("console", lambda msg: _is_problem(msg) and problems.append(f"console: {msg.text}"))
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on(
        "response",
        lambda response: response.status >= 400 and problems.append(f"{response.status} {response.url}"),
    )
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture
def page(browser: Any, live_server: LiveServer, page_problems: list[str]) -> Iterator[Any]:
    """A fresh browser context and page at desktop size, with relative URLs on the live server."""
    with open_page(browser, live_server.url, page_problems) as tab:
        yield tab


# A request cut off by leaving the page (voltpark.js aborts them) is not a failure: htmx logs it as
# sendAbort plus afterRequest. A real failure still shows as htmx:responseError or htmx:sendError,
# and as the response's status.
BENIGN_HTMX_ERRORS = ("htmx:sendAbort", "htmx:afterRequest")


def _is_problem(message: Any) -> bool:
    return message.type == "error" and not message.text.startswith(BENIGN_HTMX_ERRORS)


def screenshot(page: Any, name: str, *, phone: bool = False) -> Path:
    """Save a full-page PNG as docs/screenshots/<name>.png; at phone width, check nothing overflows."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if phone:
        page.set_viewport_size(PHONE)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{name}: the page is {width}px wide, wider than a phone"
    page.screenshot(path=str(path), full_page=True)
    if phone:
        page.set_viewport_size(DESKTOP)
    return path


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
    log_path = tmp_path / "celery-worker.log"
    command = _worker_command(name, celery_worker_options, tmp_path)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            env={**_worker_env(), **celery_worker_options.get("env", {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_worker_answers(name, process, log_path)
        yield name
    finally:
        _stop(process)


def _worker_command(name: str, options: dict[str, Any], tmp_path: Path) -> list[str]:
    command = [sys.executable, "-m", "celery", "-A", "voltpark", "worker", "-P", "solo", "-n", name]
    command += ["--without-gossip", "--without-mingle", "--loglevel=INFO"]
    if options.get("beat"):
        command += ["-B", "-s", str(tmp_path / "celerybeat-schedule")]
    for module in options.get("include", []):
        command += ["-I", module]
    return command


def _worker_env() -> dict[str, str]:
    return worker_environment(CELERY_TASK_ALWAYS_EAGER="false")


def _wait_until_worker_answers(name: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    from voltpark.celery import app

    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if app.control.ping(destination=[name], timeout=0.5):
            return
    _stop(process)
    raise RuntimeError(f"the Celery worker did not start:\n{log_path.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Warm shutdown of the worker (and its embedded beat), then a kill if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
