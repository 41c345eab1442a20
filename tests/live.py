"""The environment for processes a test starts (Celery workers and beat) so that they use the test
database and the same Redis, whether those are configured servers or the embedded ones."""

import os
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from bench.soak_platform import free_port  # one copy: the tests and the soak pick their ports alike

__all__ = ["free_port", "test_database_url", "worker_environment"]


def test_database_url() -> str:
    """A DATABASE_URL for the test database (once pytest-django has created it)."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else "")
    host = db["HOST"] or "127.0.0.1"
    # The embedded server listens on a Unix socket: its directory goes percent-encoded in the host.
    host = quote(host, safe="") if host.startswith("/") else host
    return f"postgres://{auth}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_environment(**extra: str) -> dict[str, str]:
    """This process's environment pointed at the test database and Redis, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(DATABASE_URL=test_database_url(), REDIS_URL=settings.REDIS_URL, **extra)
    return env
