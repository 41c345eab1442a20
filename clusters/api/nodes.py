"""Nodes API for staff admins: the fleet's nodes, drain and undrain."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import AuthenticatedRequest, IsStaffAdmin
from clusters.choices import NodeState
from clusters.models import Node
from clusters.selectors.fleet import node_for_staff, nodes_for_staff
from clusters.services.health import node_drain, node_undrain


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

    def get_queryset(self):
        params = self.request.query_params
        return nodes_for_staff(state=params.get("state"), region=params.get("region"))


class NodeChangeSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, help_text="Why; kept in the audit trail.")


class _NodeStateApi(APIView):
    permission_classes = [IsStaffAdmin]

    def change(self, node: Node, request: AuthenticatedRequest, reason: str) -> Node:
        raise NotImplementedError

    @extend_schema(request=NodeChangeSerializer, responses=NodeSerializer)
    def post(self, request: AuthenticatedRequest, public_id: str) -> Response:
        form = NodeChangeSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        node = node_for_staff(public_id)
        node = self.change(node, request, form.validated_data["reason"])
        return Response(NodeSerializer(nodes_for_staff().get(pk=node.pk)).data)


class NodeDrainApi(_NodeStateApi):
    """Take an available node out of placement (its running leases continue)."""

    def change(self, node: Node, request: AuthenticatedRequest, reason: str) -> Node:
        return node_drain(node=node, actor=request.user, reason=reason)


class NodeUndrainApi(_NodeStateApi):
    """Return a drained or unhealthy node to placement; its open health events end."""

    def change(self, node: Node, request: AuthenticatedRequest, reason: str) -> Node:
        return node_undrain(node=node, actor=request.user, reason=reason)
