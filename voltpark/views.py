"""The health check that Docker, a load balancer or an orchestrator calls: /healthz, no login."""

import logging
from collections.abc import Callable

from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from redis.exceptions import RedisError

PATH = "/healthz"

log = logging.getLogger(__name__)


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    # The cache's own client, so the check uses the connection settings every request uses.
    cache._cache.get_client(write=True).ping()  # type: ignore[attr-defined]


PARTS: dict[str, Callable[[], None]] = {"database": _database, "redis": _redis}


def healthz(request: HttpRequest) -> JsonResponse:
    """200 with each part "ok", or 503 naming the part that failed."""
    answers = {name: _check(name, part) for name, part in PARTS.items()}
    healthy = all(answer == "ok" for answer in answers.values())
    response = JsonResponse(
        {"status": "ok" if healthy else "unavailable", **answers}, status=200 if healthy else 503
    )
    add_never_cache_headers(response)
    return response


def _check(name: str, part: Callable[[], None]) -> str:
    try:
        part()
    except (DatabaseError, RedisError, OSError) as error:
        log.warning("health check: %s failed: %s", name, error)
        return "failed"
    return "ok"


class HealthzMiddleware:
    """Answer /healthz before host validation and the rest of the stack.

    Docker and orchestrators call it by address (127.0.0.1, a pod's IP), which ALLOWED_HOSTS
    rightly does not list, and the answer must not depend on sessions or redirects.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == PATH and request.method in ("GET", "HEAD"):
            return healthz(request)
        return self.get_response(request)
