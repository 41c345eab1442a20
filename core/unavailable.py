"""A request that finds PostgreSQL or Redis away is answered 503 with Retry-After, not 500.

A restart of the database or of Redis (a failover, an upgrade) lasts seconds; a client told 503 and
when to come back retries (with its Idempotency-Key, for a booking) instead of reporting a server
bug. Every other exception still reaches Django's 500 handling.
"""

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5
# psycopg2's connection and transaction-rollback errors reach Django as OperationalError, a closed
# connection as InterfaceError; redis-py's as its ConnectionError and TimeoutError.
UNAVAILABLE = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)
DETAIL = "The service is briefly unavailable (its database or cache is restarting); try again shortly."


class UnavailableMiddleware:
    """Turns a view's database or Redis outage into 503: JSON with `code` and `detail` under /api/."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, UNAVAILABLE):
            return None
        log.warning("answered 503: %s %s: %s", request.method, request.path, exception)
        response: HttpResponse
        if request.path.startswith("/api/"):
            response = JsonResponse({"code": "unavailable", "detail": DETAIL}, status=503)
        else:
            response = HttpResponse(DETAIL + "\n", status=503, content_type="text/plain")
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
