"""Running database work on other threads, each with its own connection, for the concurrency tests
(they need `@pytest.mark.django_db(transaction=True)` and are marked slow):

- `race(calls)`: the calls really at once, released together by a barrier;
- `held_open(write, commit_after=...)`: another writer's transaction left open while this thread
  runs into it (a lock it waits for, an exclusion constraint that fires on its commit);
- `in_own_thread(call)`: one call off this thread, for code that must not run on it (Django's
  synchronous ORM while Playwright's event loop occupies the test's thread).
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections, transaction


def race(calls: list[Callable[..., Any]], timeout: float = 60) -> list[Any]:
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


def in_own_thread(call: Callable[[], Any], timeout: float = 30) -> Any:
    """What `call` returned, run on a thread (and database connection) of its own; its exception is
    raised here."""
    [result] = race([call], timeout=timeout)
    if isinstance(result, BaseException):
        raise result
    return result


@contextmanager
def held_open(write: Callable[[], Any], *, commit_after: float, timeout: float = 30) -> Iterator[None]:
    """`write` done in another thread's transaction, which commits `commit_after` seconds into the
    block: until then its rows are written but uncommitted, so the block's statements meet them."""
    written, commit = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def hold() -> None:
        try:
            with transaction.atomic():
                write()
                written.set()
                commit.wait(timeout=timeout)
        except Exception as error:  # noqa: BLE001 - reported by the assertions below
            failures.append(error)
            written.set()  # no need to wait out the timeout to report it
        finally:
            connections.close_all()

    writer = threading.Thread(target=hold)
    writer.start()
    assert written.wait(timeout=10) and not failures, f"the other writer did not write: {failures}"
    timer = threading.Timer(commit_after, commit.set)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        commit.set()
        writer.join(timeout=timeout)
    assert not writer.is_alive(), "the other writer did not finish"
    assert failures == [], failures
