"""Audit API: an organization's audit trail, for its owners, as pages of JSON or one CSV file."""

import re
from typing import Any, cast

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import IsOwner, OrganizationRequest
from accounts.choices import TokenScope
from accounts.models import AuditEntry
from accounts.selectors.audit import AuditFilter, audit_csv, audit_trail_of

ACTION = re.compile(r"[a-z_]+(\.[a-z_]*)*")


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.EmailField(source="actor.email", read_only=True, allow_null=True, default=None)

    class Meta:
        model = AuditEntry
        fields = ["at", "action", "actor", "object_type", "object_id", "before", "after", "request_id"]
        read_only_fields = fields


class AuditQuerySerializer(serializers.Serializer):
    since = serializers.DateField(required=False, help_text="Rows on or after this UTC day.")
    until = serializers.DateField(required=False, help_text="Rows on or before this UTC day.")
    action = serializers.CharField(
        required=False,
        max_length=60,
        help_text="One action (`user.login`), or every action under a prefix ending in a dot (`user.`).",
    )

    def validate_action(self, value: str) -> str:
        if not ACTION.fullmatch(value):
            raise serializers.ValidationError("Name an action such as user.login, or a prefix such as user.")
        return value

    def validate(self, attrs: dict[str, object]) -> dict[str, object]:
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and until < since:  # type: ignore[operator]
            raise serializers.ValidationError({"until": "The end of the range is before its start."})
        return attrs

    def to_filter(self) -> AuditFilter:
        data = self.validated_data
        return AuditFilter(since=data.get("since"), until=data.get("until"), action=data.get("action", ""))


def audit_filter_of(query: dict[str, str]) -> AuditFilter:
    """The filter a query string asks for (400 naming the parameter when it is wrong)."""
    wanted = AuditQuerySerializer(data={k: v for k, v in query.items() if k in {"since", "until", "action"}})
    wanted.is_valid(raise_exception=True)
    return wanted.to_filter()


class AuditTrailApi(ListAPIView):
    """The organization's audit trail, newest first: every change and its members' sign-ins."""

    serializer_class = AuditEntrySerializer
    permission_classes = [IsOwner]
    token_scope = TokenScope.READ

    @extend_schema(parameters=[AuditQuerySerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[AuditEntry]:
        request = cast(OrganizationRequest, self.request)
        return audit_trail_of(request.organization, audit_filter_of(request.query_params))


class AuditTrailCsvApi(APIView):
    """The organization's audit trail as one CSV file (the same filters)."""

    permission_classes = [IsOwner]
    token_scope = TokenScope.READ
    throttle_scope = "exports"

    @extend_schema(
        parameters=[AuditQuerySerializer],
        responses={(200, "text/csv"): OpenApiResponse(response=OpenApiTypes.BINARY, description="CSV file")},
    )
    def get(self, request: OrganizationRequest) -> HttpResponseBase:
        entries = audit_trail_of(request.organization, audit_filter_of(request.query_params))
        response = StreamingHttpResponse(
            audit_csv(entries), content_type="text/csv; charset=utf-8; header=present"
        )
        response["Content-Disposition"] = f'attachment; filename="audit-{request.organization.slug}.csv"'
        return response
