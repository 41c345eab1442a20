"""The suite's rule for markers (tests/markers.py) names a slow test left unmarked, and only that."""

from types import SimpleNamespace
from typing import Any

from tests.markers import unmarked_slow_tests
from tests.races import race


def item(function: Any, *, fixtures: tuple[str, ...] = (), marks: tuple[str, ...] = ()) -> SimpleNamespace:
    """What the rule reads of a collected test."""
    return SimpleNamespace(
        nodeid=f"tests/test_x.py::{function.__name__}",
        function=function,
        fixturenames=list(fixtures),
        get_closest_marker=lambda name: name if name in marks else None,
    )


def racing() -> None:
    race([lambda: None, lambda: None])


def quick() -> None:
    assert True


def test_a_test_racing_threads_unmarked_is_named() -> None:
    assert unmarked_slow_tests([item(racing), item(quick)]) == ["tests/test_x.py::racing"]


def test_a_test_on_a_live_server_or_a_real_worker_unmarked_is_named() -> None:
    on_server = item(quick, fixtures=("db", "live_server"))
    with_worker = item(quick, fixtures=("celery_worker",))
    assert unmarked_slow_tests([on_server, with_worker]) == ["tests/test_x.py::quick"] * 2


def test_a_slow_test_marked_slow_or_browser_passes() -> None:
    marked = [item(racing, marks=("slow",)), item(quick, fixtures=("live_server",), marks=("browser",))]
    assert unmarked_slow_tests(marked) == []
