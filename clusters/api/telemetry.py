"""Telemetry API: a lease's samples and hourly summaries for its organization."""

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import CanBook, OrganizationRequest
from clusters.selectors.leases import lease_of_organization_or_404
from clusters.selectors.telemetry import lease_telemetry
from core.refusals import Refused

DEFAULT_TELEMETRY_WINDOW = timedelta(hours=1)


class SampleSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    utilization_pct = serializers.IntegerField(allow_null=True)
    memory_used_bytes = serializers.IntegerField(allow_null=True)
    temperature_c = serializers.IntegerField(allow_null=True)
    power_draw_w = serializers.FloatField(allow_null=True)


class TelemetryGpuSerializer(serializers.Serializer):
    uuid = serializers.CharField()
    index = serializers.IntegerField()
    node = serializers.CharField()
    samples = SampleSerializer(many=True)


class TelemetryHourSerializer(serializers.Serializer):
    hour = serializers.DateTimeField()
    mean_utilization_pct = serializers.FloatField()
    memory_peak_bytes = serializers.IntegerField()
    energy_wh = serializers.FloatField()


class TelemetrySerializer(serializers.Serializer):
    lease = serializers.UUIDField(source="lease.public_id")
    since = serializers.DateTimeField()
    truncated = serializers.BooleanField(help_text="More samples exist than one answer carries.")
    gpus = TelemetryGpuSerializer(many=True)
    hours = TelemetryHourSerializer(many=True)


class LeaseTelemetryApi(APIView):
    """Samples of a lease's GPUs since `since` (default: the last hour), and its hourly summaries."""

    permission_classes = [CanBook]

    @extend_schema(
        parameters=[OpenApiParameter("since", datetime, description="ISO 8601; default one hour ago")],
        responses=TelemetrySerializer,
    )
    def get(self, request: OrganizationRequest, public_id: str) -> Response:
        lease = lease_of_organization_or_404(request.organization, public_id)
        telemetry = lease_telemetry(lease, since=_since(request.query_params.get("since")))
        return Response(TelemetrySerializer(telemetry).data)


def _since(raw: str | None) -> datetime:
    if not raw:
        return timezone.now() - DEFAULT_TELEMETRY_WINDOW
    try:
        since = parse_datetime(raw)
    except ValueError:
        since = None
    if since is None:
        raise Refused("since must be an ISO 8601 date and time.", code="invalid_since", status=400)
    return since if since.tzinfo else since.replace(tzinfo=UTC)
