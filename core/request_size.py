"""Request bodies are capped on every path, before anything reads them.

Django checks DATA_UPLOAD_MAX_MEMORY_SIZE only when a form body is read, and DRF's parsers read
the stream without a limit, so this middleware refuses an oversized body by its Content-Length:
413, as JSON under /api/ and as a short page elsewhere. A body sent without Content-Length (chunked)
is never read by Django (its stream is empty), so the header is the whole story.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

API_PREFIX = "/api/"


def declared_length(request: HttpRequest) -> int:
    """The body's length as the client declared it; 0 when absent or unreadable, as Django reads it."""
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


class RequestSizeMiddleware:
    """413 for a body longer than REQUEST_BODY_MAX_BYTES; nothing of it is read."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.REQUEST_BODY_MAX_BYTES
        if declared_length(request) <= limit:
            return self.get_response(request)
        detail = f"The request body is over the limit of {limit // 1024} KiB."
        if request.path.startswith(API_PREFIX):
            return JsonResponse({"code": "body_too_large", "detail": detail}, status=413)
        return HttpResponse(detail, status=413, content_type="text/plain; charset=utf-8")
