"""The browser-test harness (its fixtures are in tests/browser/conftest.py): Debian's Chromium
through Playwright, pages that collect their problems, screenshots, and a real Celery worker on the
test database.

- `open_page(browser, base_url, problems)`: a fresh context and page whose console errors (CSP
  refusals among them), page errors and failed requests are appended to `problems`.
- `screenshot(page, name, phone=False)`: at phone width, checks nothing overflows (on every run);
  writes docs/screenshots/<name>.png only when BROWSER_SCREENSHOTS is true (`make screenshots`), so a
  normal test run writes no file in the tree.
- `confirm_email(page, email)`: opens the verification link last emailed to `email` and confirms it,
  as the person would from their inbox (the live server runs in this process: its mail is here).
- `accessibility_problems(page)`: axe-core (from npm, node_modules/axe-core) run in the page at
  desktop and phone widths; its serious and critical violations, one line each.
- `log_in_as(page, base_url, user)`: the browser context carries a session of `user`, as if they had logged
  in (a staff user with a second factor counts as signed in with it).
- `start_worker` / `stop_worker`: a `celery -A voltpark worker -P solo [-B]` subprocess on the test
  database and the same Redis.
"""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import mail
from pytest_django.live_server_helper import LiveServer

from tests.live import worker_environment
from voltpark.env import envbool

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
SCREENSHOTS_VARIABLE = "BROWSER_SCREENSHOTS"
SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WORKER_START_TIMEOUT_S = 30
# axe-core comes from npm (package.json); `make install` puts it here.
AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
AXE_IMPACTS = ("serious", "critical")
# A request cut off by leaving the page (voltpark.js aborts them) is not a failure: htmx logs it as
# sendAbort plus afterRequest. A real failure still shows as htmx:responseError or htmx:sendError,
# and as the response's status.
BENIGN_HTMX_ERRORS = ("htmx:sendAbort", "htmx:afterRequest")


def confirm_email(page: Any, email: str) -> None:
    """Open the last verification link sent to `email` and press Confirm."""
    sent = [m for m in mail.outbox if m.to == [email] and "/confirm-email/" in str(m.body)]
    link = re.search(r"https?://\S+/confirm-email/\S+", str(sent[-1].body))
    assert link, sent[-1].body
    page.goto(link.group(0))
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_load_state()


def accessibility_problems(page: Any) -> list[str]:
    """axe-core's serious and critical violations of the page as shown, at desktop then phone width
    (the viewport is left at desktop width), each as "width: rule (impact): help: targets"."""
    assert AXE.exists(), f"axe-core is missing at {AXE}: run `make install` (npm ci)"
    problems: list[str] = []
    for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        if not page.evaluate("() => typeof window.axe === 'object'"):
            # Evaluated through the debugging protocol, which the page's content security policy
            # does not govern: the page itself still allows no inline or foreign script.
            page.evaluate(AXE.read_text())
        found = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
        for violation in found["violations"]:
            if violation["impact"] in AXE_IMPACTS:
                targets = ", ".join(" ".join(node["target"]) for node in violation["nodes"][:5])
                problems.append(
                    f"{name}: {violation['id']} ({violation['impact']}): {violation['help']}: {targets}"
                )
    page.set_viewport_size(DESKTOP)
    return problems


def log_in_as(page: Any, base_url: str, user: Any) -> None:
    """Give the page's browser context a session of `user` (Django's test client makes it)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": base_url}])


def live_server_on_a_free_port() -> LiveServer:
    """pytest-django's live server, on the first free port of our loopback range."""
    last_error: Exception | None = None
    for port in PORTS:
        try:
            return LiveServer(f"127.0.0.1:{port}")
        except OSError as error:
            last_error = error
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}: {last_error}")


@contextmanager
def async_unsafe_allowed() -> Iterator[None]:
    """Django's async-safety guard lifted: Playwright's sync API keeps an asyncio loop running on this
    thread, while the test's own database calls are still synchronous."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@contextmanager
def open_page(browser: Any, base_url: str, problems: list[str], **context_options: Any) -> Iterator[Any]:
    """A fresh browser context and page at desktop size whose problems are collected in `problems`."""
    context = browser.new_context(base_url=base_url, viewport=DESKTOP, **context_options)
    context.set_default_timeout(10_000)
    tab = context.new_page()

    def on_console(message: Any) -> None:
        if _is_problem(message):
            problems.append(f"console: {message.text}")

    def on_response(response: Any) -> None:
        if response.status >= 400:
            problems.append(f"{response.status} {response.url}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on("response", on_response)
    try:
        yield tab
    finally:
        context.close()


def _is_problem(message: Any) -> bool:
    return message.type == "error" and not message.text.startswith(BENIGN_HTMX_ERRORS)


def screenshots_asked() -> bool:
    """Whether this run writes screenshots (`make screenshots` sets BROWSER_SCREENSHOTS=1)."""
    return envbool(SCREENSHOTS_VARIABLE, False)


def screenshot(page: Any, name: str, *, phone: bool = False) -> Path | None:
    """At phone width, check nothing overflows; when asked, save a full-page PNG as
    docs/screenshots/<name>.png and return its path."""
    path = SCREENSHOTS / f"{name}.png" if screenshots_asked() else None
    if phone:
        page.set_viewport_size(PHONE)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{name}: the page is {width}px wide, wider than a phone"
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
    if phone:
        page.set_viewport_size(DESKTOP)
    return path


def start_worker(name: str, options: dict[str, Any], tmp_path: Path) -> subprocess.Popen[bytes]:
    """A Celery worker named `name` on the test database and Redis, once it answers a ping; its log
    is tmp_path/celery-worker.log. `options`: `beat`, `include` (task modules), `env` (variables)."""
    log_path = tmp_path / "celery-worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            _worker_command(name, options, tmp_path),
            cwd=settings.BASE_DIR,
            env={**worker_environment(CELERY_TASK_ALWAYS_EAGER="false"), **options.get("env", {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _wait_until_worker_answers(name, process, log_path)
    return process


def _worker_command(name: str, options: dict[str, Any], tmp_path: Path) -> list[str]:
    command = [sys.executable, "-m", "celery", "-A", "voltpark", "worker", "-P", "solo", "-n", name]
    command += ["--without-gossip", "--without-mingle", "--loglevel=INFO"]
    if options.get("beat"):
        command += ["-B", "-s", str(tmp_path / "celerybeat-schedule")]
    for module in options.get("include", []):
        command += ["-I", module]
    return command


def _wait_until_worker_answers(name: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    from voltpark.celery import app

    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if app.control.ping(destination=[name], timeout=0.5):
            return
    stop_worker(process)
    raise RuntimeError(f"the Celery worker did not start:\n{log_path.read_text()[-3000:]}")


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    """Warm shutdown of the worker (and its embedded beat), then a kill if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
