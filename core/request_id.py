"""The id of the request (or Celery task) being served, so its log lines and audit rows can be found.

The id lives in a context variable: set by the middleware for a request and by the Celery signals
for a task, read by the logging filter and by the audit trail, cleared when the work is done.
"""

import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar, Token

from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
# A client's own id is kept only when it cannot smuggle anything into a log line or a header.
WELL_FORMED = re.compile(r"[A-Za-z0-9-]{1,64}")
OUTSIDE = "-"

_current: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request or task being served here, or None outside of one."""
    return _current.get()


def request_id_bind(request_id: str) -> Token[str | None]:
    """Serve what follows as `request_id`, until `request_id_unbind` with the token returned."""
    return _current.set(request_id)


def request_id_unbind(token: Token[str | None]) -> None:
    """Back to the id bound before (usually none)."""
    _current.reset(token)


def request_id_from(header: str | None) -> str:
    """The client's id when it is well formed, else a new random one."""
    if header is not None and WELL_FORMED.fullmatch(header):
        return header
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Give every request an id (the client's X-Request-ID or a new one) and return it in the answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request.headers.get(HEADER))
        # Not cleared on the way out: Django logs a 4xx/5xx answer, and a streamed body is produced,
        # after the middleware has returned. request_finished clears it once the answer is sent.
        _current.set(request_id)
        response = self.get_response(request)
        response[HEADER] = request_id
        return response


def _clear(**_: object) -> None:
    _current.set(None)


request_finished.connect(_clear, dispatch_uid="core.request_id.clear")


class RequestIdFilter(logging.Filter):
    """Add `request_id` to every record ("-" outside a request), for the log format to print."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _current.get() or OUTSIDE
        return True
