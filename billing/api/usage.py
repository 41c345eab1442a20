"""Usage API: the organization's usage by clock hour."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import CanSeeUsage, OrganizationRequest
from accounts.choices import TokenScope
from billing.selectors.usage import usage_by_hour
from core.periods import month_of


class UsageQuerySerializer(serializers.Serializer):
    start = serializers.DateTimeField(required=False, help_text="`from`; default: start of this month.")
    end = serializers.DateTimeField(required=False, help_text="`to`; default: now.")


class UsageHourSerializer(serializers.Serializer):
    hour = serializers.DateTimeField()
    gpu_seconds = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=24, decimal_places=12)


class UsageApi(APIView):
    """The organization's usage by clock hour in [from, to)."""

    permission_classes = [CanSeeUsage]
    token_scope = TokenScope.BILLING

    @extend_schema(responses=UsageHourSerializer(many=True))
    def get(self, request: OrganizationRequest) -> Response:
        params = {"start": request.query_params.get("from"), "end": request.query_params.get("to")}
        query = UsageQuerySerializer(data={k: v for k, v in params.items() if v})
        query.is_valid(raise_exception=True)
        now = timezone.now()
        start = query.validated_data.get("start") or month_of(now)
        end = query.validated_data.get("end") or now
        rows = usage_by_hour(request.organization, start, end)
        return Response(UsageHourSerializer(rows, many=True).data)
