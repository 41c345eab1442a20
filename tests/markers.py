"""The suite's rule for markers: a test that starts a real Celery worker or a live server, or races
threads, is marked slow (or browser), so `make test-fast` (-m "not browser and not slow") stays
fast. The root conftest refuses to run the suite while a test breaks the rule."""

from collections.abc import Iterable
from typing import Any

# Fixtures that start a process or a server: the browser harness's live server and Celery worker,
# the run-time tests' worker and beat (tests/clusters/test_runtime_celery.py), and the CLI's live
# platform (tests/clients/test_cli_live.py: gunicorn and a worker).
SLOW_FIXTURES = frozenset({"live_server", "celery_worker", "celery", "live_api"})
# The helpers of tests/races.py that run racing threads (in_own_thread runs one call: no race).
RACE_HELPERS = frozenset({"race", "held_open"})


def is_slow(item: Any) -> bool:
    """Whether the test uses a slow fixture or itself calls a race helper."""
    code = getattr(getattr(item, "function", None), "__code__", None)
    called = set(code.co_names) if code is not None else set()
    return bool(SLOW_FIXTURES & set(item.fixturenames) or RACE_HELPERS & called)


def unmarked_slow_tests(items: Iterable[Any]) -> list[str]:
    """The node ids of the slow tests marked neither slow nor browser."""
    return [
        item.nodeid
        for item in items
        if is_slow(item) and not (item.get_closest_marker("slow") or item.get_closest_marker("browser"))
    ]
