"""Run-time API: a lease's telemetry for its organization; the fleet's nodes, drain and undrain for staff."""

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import CanBook, IsStaffAdmin
from clusters.choices import NodeState
from clusters.models import Node
from clusters.selectors import lease_of_organization_or_404
from clusters.selectors_runtime import lease_telemetry, nodes_for_staff
from clusters.selectors_staff import node_for_staff
from clusters.services.health import NodeStateError, node_drain, node_undrain
from voltpark.api import ApiError

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


class UsageHourSerializer(serializers.Serializer):
    hour = serializers.DateTimeField()
    mean_utilization_pct = serializers.FloatField()
    memory_peak_bytes = serializers.IntegerField()
    energy_wh = serializers.FloatField()


class TelemetrySerializer(serializers.Serializer):
    lease = serializers.UUIDField(source="lease.public_id")
    since = serializers.DateTimeField()
    truncated = serializers.BooleanField(help_text="More samples exist than one answer carries.")
    gpus = TelemetryGpuSerializer(many=True)
    hours = UsageHourSerializer(many=True)


class LeaseTelemetryApi(APIView):
    """Samples of a lease's GPUs since `since` (default: the last hour), and its hourly summaries."""

    permission_classes = [CanBook]

    @extend_schema(
        parameters=[OpenApiParameter("since", datetime, description="ISO 8601; default one hour ago")],
        responses=TelemetrySerializer,
    )
    def get(self, request: Request, public_id: str) -> Response:
        lease = lease_of_organization_or_404(request.organization, public_id)  # type: ignore[attr-defined]
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
        raise ApiError(code="invalid_since", detail="since must be an ISO 8601 date and time.")
    return since if since.tzinfo else since.replace(tzinfo=UTC)


class HealthEventSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    kind = serializers.CharField()
    gpu_index = serializers.IntegerField(source="gpu.index", allow_null=True, default=None)
    detail = serializers.CharField()
    started_at = serializers.DateTimeField()


class NodeSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    hostname = serializers.CharField()
    region = serializers.CharField(source="cluster.region.code")
    cluster = serializers.CharField(source="cluster.name")
    pool = serializers.CharField()
    state = serializers.CharField()
    state_reason = serializers.CharField()
    state_changed_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField(allow_null=True)
    unreachable_sweeps = serializers.IntegerField()
    gpus_total = serializers.IntegerField(required=False)
    gpus_healthy = serializers.IntegerField(required=False)
    gpus_need_cleanup = serializers.IntegerField(required=False)
    open_health_events = HealthEventSerializer(source="open_events", many=True, required=False)


class NodeListApi(ListAPIView):
    """Every node with its state, GPU counts and open health events; filter with ?state= and ?region=."""

    permission_classes = [IsStaffAdmin]
    serializer_class = NodeSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("state", str, enum=NodeState.values),
            OpenApiParameter("region", str, description="region code, e.g. us-tx-1"),
        ]
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        params = self.request.query_params
        return nodes_for_staff(state=params.get("state"), region=params.get("region"))


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, help_text="Why; kept in the audit trail.")


class _NodeStateApi(APIView):
    permission_classes = [IsStaffAdmin]

    def change(self, node: Node, request: Request, reason: str) -> Node:
        raise NotImplementedError

    @extend_schema(request=ReasonSerializer, responses=NodeSerializer)
    def post(self, request: Request, public_id: str) -> Response:
        form = ReasonSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        node = node_for_staff(public_id)
        try:
            node = self.change(node, request, form.validated_data["reason"])
        except NodeStateError as exc:
            raise ApiError(
                code="node_state", detail=str(exc), status_code=status.HTTP_409_CONFLICT, state=node.state
            ) from None
        return Response(NodeSerializer(nodes_for_staff().get(pk=node.pk)).data)


class NodeDrainApi(_NodeStateApi):
    """Take an available node out of placement (its running leases continue)."""

    def change(self, node: Node, request: Request, reason: str) -> Node:
        return node_drain(node=node, actor=request.user, reason=reason)


class NodeUndrainApi(_NodeStateApi):
    """Return a drained or unhealthy node to placement; its open health events end."""

    def change(self, node: Node, request: Request, reason: str) -> Node:
        return node_undrain(node=node, actor=request.user, reason=reason)
