"""API error shape: every refusal carries a stable `code` and a `detail` sentence for people."""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.refusals import Refused


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The one place refusals become API answers: every error body has `code` and `detail`."""
    if isinstance(exc, Refused):
        return Response({"code": exc.code, "detail": exc.detail, **exc.extra}, status=exc.status)
    exc = _from_service(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ValidationError):
        fields = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        response.data = {"code": "invalid", "detail": _sentence(fields), "fields": fields}
    elif isinstance(response.data, dict) and "detail" in response.data:
        codes = exc.get_codes() if isinstance(exc, APIException) else "error"
        response.data = {"code": codes if isinstance(codes, str) else "error", **response.data}
    return response


def _sentence(fields: dict[str, Any]) -> str:
    parts = []
    for field, errors in fields.items():
        message = errors[0] if isinstance(errors, list) and errors else errors
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


def _from_service(exc: Exception) -> Exception:
    """A service's Django refusal as DRF's: 400 `invalid` with its fields, or 403 with its sentence.

    (DRF's own handler would turn PermissionDenied into 403 but drop the service's sentence.)
    """
    if isinstance(exc, DjangoValidationError):
        return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, DjangoPermissionDenied) and str(exc):
        return PermissionDenied(str(exc))
    return exc


@csrf_exempt  # as every API view is: a PUT to an unknown address is a 404, not a CSRF page
def api_not_found(request: HttpRequest) -> JsonResponse:
    """Any /api/ address no operation answers: a 404 in the API's error shape, never an HTML page
    (an id with characters its route does not take, such as a slug with a space, lands here)."""
    return JsonResponse(
        {"code": "not_found", "detail": "No API operation answers at this address."}, status=404
    )
