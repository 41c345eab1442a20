"""The harness itself: a real Celery worker reaches the test database; Chromium loads our pages;
screenshots are written only when asked, while the phone-width check runs on every run."""

import time
import uuid
from pathlib import Path

import pytest

from accounts.models import AuditEntry
from tests.browser import harness

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def celery_worker_options() -> dict[str, object]:
    return {"beat": False, "include": ["tests.browser.worker_probe"]}


def test_a_task_sent_through_redis_runs_in_the_worker_on_the_test_database(celery_worker) -> None:
    from voltpark.celery import app

    marker = uuid.uuid4().hex
    app.send_task("tests.browser.worker_probe.probe", kwargs={"marker": marker})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not AuditEntry.objects.filter(object_id=marker).exists():
        time.sleep(0.2)
    assert AuditEntry.objects.filter(action="worker.probe", object_id=marker).count() == 1


def test_pages_load_htmx_and_our_script_without_breaking_the_policy(page, page_problems, live_server) -> None:
    response = page.goto("/")
    assert response is not None and "default-src 'self'" in response.headers["content-security-policy"]
    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate("htmx.version") == "2.0.11"
    assert page.locator("style").count() == 0  # htmx did not inject its indicator styles
    assert page_problems == [], page_problems


def test_keyboard_focus_is_visible(page, page_problems) -> None:
    page.goto("/")
    page.keyboard.press("Tab")  # the skip link comes first and shows itself
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    width = page.evaluate("parseFloat(getComputedStyle(document.activeElement).outlineWidth)")
    assert outline == "solid" and width >= 2
    assert page_problems == [], page_problems


def test_the_api_docs_render_under_their_policy(page, page_problems) -> None:
    page.goto("/api/v1/docs/")
    page.locator(".swagger-ui .info").wait_for()
    assert page.get_by_text("Voltpark API").first.is_visible()
    assert page_problems == [], page_problems


@pytest.fixture
def screenshots_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Where screenshot() would write (a temporary folder instead of docs/screenshots/)."""
    folder = tmp_path / "screenshots"
    monkeypatch.setattr(harness, "SCREENSHOTS", folder)
    return folder


def test_a_screenshot_writes_nothing_unless_asked(page, screenshots_folder, monkeypatch) -> None:
    monkeypatch.delenv(harness.SCREENSHOTS_VARIABLE, raising=False)
    page.goto("/")
    assert harness.screenshot(page, "home", phone=True) is None
    assert not screenshots_folder.exists()


def test_a_screenshot_asked_for_is_a_png_in_the_screenshots_folder(
    page, screenshots_folder, monkeypatch
) -> None:
    monkeypatch.setenv(harness.SCREENSHOTS_VARIABLE, "1")
    page.goto("/")
    path = harness.screenshot(page, "home", phone=True)
    assert path == screenshots_folder / "home.png"
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert page.viewport_size == harness.DESKTOP  # back to desktop for the rest of the journey


def test_the_phone_width_check_runs_without_screenshots(page, screenshots_folder, monkeypatch) -> None:
    monkeypatch.delenv(harness.SCREENSHOTS_VARIABLE, raising=False)
    page.goto("/")
    # Set through the CSSOM, which the content security policy allows (a style attribute it would not).
    page.evaluate(
        "Object.assign(document.body.appendChild(document.createElement('div')).style,"
        " {width: '2000px', height: '10px'})"
    )
    with pytest.raises(AssertionError, match="wider than a phone"):
        harness.screenshot(page, "too-wide", phone=True)
    assert not screenshots_folder.exists()
