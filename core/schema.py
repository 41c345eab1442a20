"""The OpenAPI schema's error answers: every operation documents the errors it can give, each with
one shared body (`Error`), as `core.api.exception_handler` writes it."""

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

ERROR_DESCRIPTIONS = {
    "400": "Bad input: `code` is `invalid` (or names the problem) and `fields` names each bad field.",
    "401": "No valid credentials: a missing, wrong or revoked token, or `token_expired`.",
    "402": "Payment needed first: no way to pay, a spend limit, or a suspended account.",
    "403": "Not allowed: the role, the token's scopes (`scope`), or staff without two factors.",
    "404": "No such object, or not one the caller may see.",
    "409": "The state does not allow it (`no_capacity` carries offerings that fit).",
    "413": "The body is larger than REQUEST_BODY_MAX_BYTES.",
    "415": "The body is not JSON.",
    "422": "An Idempotency-Key reused with another body.",
    "429": "Too many requests (`throttled`): wait the seconds in `Retry-After`.",
    "503": "A service the platform depends on (Stripe) is unreachable: try again.",
}


class ErrorSerializer(serializers.Serializer):
    """Every error answer: a stable code, a sentence for people, and what the refusal adds."""

    code = serializers.CharField(help_text="Stable and machine-readable: invalid, not_found, scope, ...")
    detail = serializers.CharField(help_text="A sentence for a person.")

    class Meta:
        ref_name = "Error"

    def get_fields(self) -> dict[str, serializers.Field]:
        # `fields` is the name in the answer, and also a Serializer attribute: added here, not declared.
        return {
            **super().get_fields(),
            "fields": serializers.DictField(
                required=False,
                help_text="With `invalid`: each bad field (or parameter) and what is wrong with it.",
            ),
        }


class AutoSchema(SpectacularAutoSchema):
    """DRF-spectacular's schema, with the error answers of each operation documented."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                responses[code] = {**response, "description": ERROR_DESCRIPTIONS[code]}
        return responses

    def _error_codes(self) -> list[str]:
        public = any(permission is AllowAny for permission in getattr(self.view, "permission_classes", []))
        codes = {"400"} if public else {"400", "401", "403", "429"}
        if "{" in self.path:
            codes.add("404")
        if self.method in UNSAFE_METHODS:
            codes |= {"402", "409", "413", "415", "422", "503"}
        return sorted(codes)
