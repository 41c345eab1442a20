"""The API's one pagination: `?limit=` and `?offset=`, both checked, the page size bounded.

DRF's own LimitOffsetPagination ignores a limit it cannot read and passes any limit it can to the
database, where one beyond bigint is an error; here a bad value is a 400 naming the parameter, and
the limit is at most API_PAGE_MAX_LIMIT.
"""

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request


class Pagination(LimitOffsetPagination):
    """Pages of at most API_PAGE_MAX_LIMIT rows (PAGE_SIZE by default); a bad parameter is a 400."""

    @property
    def max_limit(self) -> int:  # type: ignore[override]
        return settings.API_PAGE_MAX_LIMIT

    def get_limit(self, request: Request) -> int:
        raw = request.query_params.get(self.limit_query_param)
        if raw is None:
            return self.default_limit  # type: ignore[return-value]
        return _whole_number(self.limit_query_param, raw, minimum=1, maximum=self.max_limit)

    def get_offset(self, request: Request) -> int:
        raw = request.query_params.get(self.offset_query_param)
        if raw is None:
            return 0
        return _whole_number(self.offset_query_param, raw, minimum=0, maximum=settings.API_PAGE_MAX_OFFSET)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        limit, offset = super().get_schema_operation_parameters(view)
        limit["schema"].update(minimum=1, maximum=self.max_limit, default=self.default_limit)
        offset["schema"].update(minimum=0, maximum=settings.API_PAGE_MAX_OFFSET, default=0)
        return [limit, offset]


def _whole_number(name: str, raw: str, *, minimum: int, maximum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not minimum <= value <= maximum:
        raise ValidationError({name: [f"Give a whole number from {minimum} to {maximum}."]})
    return value
