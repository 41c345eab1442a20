"""Running calls really at once: each in its own thread (so its own database connection), released
together by a barrier. Tests using it need `@pytest.mark.django_db(transaction=True)`."""

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections


def race(calls: list[Callable[[], Any]], timeout: float = 60) -> list[Any]:
    """What each call returned, or the exception it raised, in the order of `calls`."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = calls[i]()
        except Exception as error:  # noqa: BLE001 - the test asserts on what each thread got
            results[i] = error
        finally:
            connections.close_all()  # this thread's connections only

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a racer did not finish"
    return results


def errors_of(results: list[Any]) -> list[BaseException]:
    return [result for result in results if isinstance(result, BaseException)]
