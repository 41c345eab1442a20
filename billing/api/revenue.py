"""Revenue API for staff finance."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import AuthenticatedRequest, IsStaffFinance
from accounts.choices import TokenScope
from billing.api.filters import FilterSerializer, _filters
from billing.selectors.revenue import revenue_summary
from core.periods import month_of


class RevenueRowSerializer(serializers.Serializer):
    month = serializers.DateTimeField()
    region = serializers.CharField()
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2)
    gpu_hours_sold = serializers.DecimalField(max_digits=16, decimal_places=3)
    gpu_hours_available = serializers.DecimalField(max_digits=16, decimal_places=3)
    utilization = serializers.DecimalField(max_digits=6, decimal_places=4)


class RevenueApi(APIView):
    """Staff finance: revenue and fleet utilization by month and region."""

    permission_classes = [IsStaffFinance]
    token_scope = TokenScope.BILLING

    @extend_schema(parameters=[FilterSerializer], responses=RevenueRowSerializer(many=True))
    def get(self, request: AuthenticatedRequest) -> Response:
        wanted = _filters(request)
        now = timezone.now()
        start = wanted.period_from or month_of(now)
        end = wanted.period_to or now
        return Response(RevenueRowSerializer(revenue_summary(start, end), many=True).data)
