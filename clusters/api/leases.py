"""Leases API: list, book, read, extend, release, cancel."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import CanBook, OrganizationRequest
from clusters.api.booking import AwareDateTimeField, BookingSerializer
from clusters.api.idempotency import idempotent
from clusters.choices import LIVE_LEASE_STATES, LeaseKind, LeaseState
from clusters.models import Lease
from clusters.selectors.leases import lease_of_organization_or_404, leases_of, ssh_command
from clusters.services.booking import lease_book, lease_cancel, lease_extend, lease_release


class ExtendSerializer(serializers.Serializer):
    end = AwareDateTimeField()


def lease_json(lease: Lease) -> dict[str, Any]:
    """A lease as the API shows it, with the GPUs it holds on each node."""
    nodes: dict[str, list[int]] = {}
    for allocation in lease.allocations.all():
        nodes.setdefault(allocation.node.hostname, []).append(allocation.gpu.index)
    live = lease.state in LIVE_LEASE_STATES
    return {
        "id": str(lease.public_id),
        "region": lease.region.code,
        "region_name": lease.region.name,
        "gpus": lease.gpus,
        "kind": lease.kind,
        "state": lease.state,
        "state_reason": lease.state_reason,
        "start": lease.start.isoformat(),
        "end": lease.end.isoformat() if lease.end else None,
        "price_per_gpu_hour": str(lease.price_per_gpu_hour),
        "currency": lease.currency,
        "nodes": [
            {
                "hostname": host,
                "gpu_indices": sorted(indices),
                "ssh_command": ssh_command(lease, host) if live else None,
            }
            for host, indices in sorted(nodes.items())
        ],
        "ssh_key_ids": [str(key.public_id) for key in lease.ssh_keys.all()],
        "created_at": lease.created_at.isoformat(),
    }


class LeaseNodeSchema(serializers.Serializer):
    hostname = serializers.CharField()
    gpu_indices = serializers.ListField(child=serializers.IntegerField())
    ssh_command = serializers.CharField(
        allow_null=True, help_text="How to log in while the lease is scheduled or active; null after."
    )


class LeaseSchema(serializers.Serializer):
    id = serializers.UUIDField()
    region = serializers.CharField()
    region_name = serializers.CharField()
    gpus = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=LeaseKind.choices)
    state = serializers.ChoiceField(choices=LeaseState.choices)
    state_reason = serializers.CharField(help_text="Why it is in its state, when that needs saying.")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(allow_null=True)
    price_per_gpu_hour = serializers.DecimalField(max_digits=10, decimal_places=4)
    currency = serializers.CharField()
    nodes = LeaseNodeSchema(many=True)
    ssh_key_ids = serializers.ListField(child=serializers.UUIDField())
    created_at = serializers.DateTimeField()


class LeaseSerializer(LeaseSchema):
    """Renders with `lease_json` (one pass over prefetched rows); the fields document it."""

    def to_representation(self, instance: Lease) -> dict[str, Any]:
        return lease_json(instance)


def _fresh(lease: Lease) -> dict[str, Any]:
    return lease_json(leases_of(lease.organization).get(pk=lease.pk))


class LeaseListApi(ListAPIView):
    """The organization's leases (filter with ?state=), or book one (honours Idempotency-Key)."""

    permission_classes = [CanBook]
    serializer_class = LeaseSerializer
    throttle_scopes = {"POST": "booking"}

    def get_queryset(self) -> Any:
        state = self.request.query_params.get("state")
        if state and state not in LeaseState.values:
            raise ValidationError({"state": f"One of: {', '.join(LeaseState.values)}."})
        return leases_of(self.request.organization, state=state)  # type: ignore[attr-defined]

    @extend_schema(request=BookingSerializer, responses={201: LeaseSchema})
    def post(self, request: OrganizationRequest) -> Response:
        return idempotent(request, request.organization, lambda: self._book(request))

    def _book(self, request: OrganizationRequest) -> Response:
        body = BookingSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        lease = lease_book(
            user=request.user,
            organization=request.organization,
            region=data["region"],
            gpus=data["gpus"],
            kind=data["kind"],
            start=data.get("start"),
            end=data.get("end"),
            ssh_keys=data["ssh_key_ids"],
        )
        # The booked lease knows the rows it wrote (see lease_book): rendered without reading back.
        return Response(lease_json(lease), status=status.HTTP_201_CREATED)


class LeaseDetailApi(APIView):
    """One of the organization's leases."""

    permission_classes = [CanBook]

    @extend_schema(responses=LeaseSchema)
    def get(self, request: OrganizationRequest, lease_id: str) -> Response:
        return Response(lease_json(lease_of_organization_or_404(request.organization, lease_id)))


class _LeaseActionApi(APIView):
    """A POST that changes one of the organization's leases; honours Idempotency-Key."""

    permission_classes = [CanBook]

    def act(self, request: OrganizationRequest, lease: Lease) -> Lease:
        raise NotImplementedError

    @extend_schema(request=None, responses=LeaseSchema)
    def post(self, request: OrganizationRequest, lease_id: str) -> Response:
        return idempotent(request, request.organization, lambda: self._respond(request, lease_id))

    def _respond(self, request: OrganizationRequest, lease_id: str) -> Response:
        lease = lease_of_organization_or_404(request.organization, lease_id)
        changed = self.act(request, lease)
        return Response(_fresh(changed))


class LeaseExtendApi(_LeaseActionApi):
    """Move a reserved lease's end later, on the same GPUs."""

    throttle_scope = "booking"

    @extend_schema(request=ExtendSerializer, responses=LeaseSchema)
    def post(self, request: OrganizationRequest, lease_id: str) -> Response:
        return super().post(request, lease_id)

    def act(self, request: OrganizationRequest, lease: Lease) -> Lease:
        body = ExtendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return lease_extend(user=request.user, lease=lease, end=body.validated_data["end"])


class LeaseReleaseApi(_LeaseActionApi):
    """End a running lease now (a scheduled one is cancelled)."""

    def act(self, request: OrganizationRequest, lease: Lease) -> Lease:
        return lease_release(user=request.user, lease=lease)


class LeaseCancelApi(_LeaseActionApi):
    """Cancel a scheduled lease before its start."""

    def act(self, request: OrganizationRequest, lease: Lease) -> Lease:
        return lease_cancel(user=request.user, lease=lease)
