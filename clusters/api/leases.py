"""Leases API: list, book, read, extend, release, cancel."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
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
from clusters.choices import LIVE_LEASE_STATES, HealthEventKind, LeaseKind, LeaseState
from clusters.models import Lease
from clusters.selectors.capacity import extendable_until
from clusters.selectors.health import LeaseHealth, leases_health
from clusters.selectors.leases import lease_of_organization_or_404, leases_of, ssh_command
from clusters.services.booking import LeaseOptions, lease_book, lease_cancel, lease_extend, lease_release
from clusters.services.remediation import lease_replacement_book


class ExtendSerializer(serializers.Serializer):
    end = AwareDateTimeField()


@dataclass(frozen=True)
class LeaseFacts:
    """What a lease's answer says beyond its own rows: how far it can be extended, its health."""

    extendable_until: dict[int, datetime | None]
    health: dict[int, LeaseHealth]


def lease_facts(leases: Sequence[Lease]) -> LeaseFacts:
    """The facts of a page of leases, in a few queries whatever its length."""
    return LeaseFacts(extendable_until=extendable_until(leases), health=leases_health(leases))


def _just_booked(lease: Lease) -> LeaseFacts:
    # Placement takes only available nodes, and they carry no open health event (an event makes a
    # node unhealthy; returning one to service ends them), and a lease just booked has used nothing:
    # its health needs no read on the booking's hot path.
    return LeaseFacts(
        extendable_until=extendable_until([lease]), health={lease.pk: LeaseHealth(flagged=False)}
    )


def _health_json(health: LeaseHealth) -> dict[str, Any]:
    return {
        "flagged": health.flagged,
        "open_events": [
            {
                "id": event.public_id,
                "node": event.hostname,
                "gpu_index": event.gpu_index,
                "kind": event.kind,
                "detail": event.detail,
                "started_at": event.started_at.isoformat(),
            }
            for event in health.open_events
        ],
        "sla_credit_gpu_hours": str(health.sla_gpu_hours),
        "sla_credit_so_far": str(health.sla_credit),
    }


def lease_json(lease: Lease, facts: LeaseFacts | None = None) -> dict[str, Any]:
    """A lease as the API shows it, with the GPUs it holds on each node, how far it can be
    extended and its health."""
    facts = facts or lease_facts([lease])
    until = facts.extendable_until.get(lease.pk)
    nodes: dict[str, list[int]] = {}
    allocations = list(lease.allocations.all())
    # A lease moved off a failed node keeps its old allocations (not live) for history.
    for allocation in [a for a in allocations if a.is_live] or allocations:
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
        "extendable_until": until.isoformat() if until else None,
        "replace_automatically": lease.replace_automatically,
        "replaces": str(lease.replaces.public_id) if lease.replaces is not None else None,
        "health": _health_json(facts.health[lease.pk]),
    }


class LeaseNodeSchema(serializers.Serializer):
    hostname = serializers.CharField()
    gpu_indices = serializers.ListField(child=serializers.IntegerField())
    ssh_command = serializers.CharField(
        allow_null=True, help_text="How to log in while the lease is scheduled or active; null after."
    )


class HealthEventSchema(serializers.Serializer):
    id = serializers.UUIDField()
    node = serializers.CharField(help_text="The node's hostname.")
    gpu_index = serializers.IntegerField(allow_null=True, help_text="Null when the whole node is concerned.")
    kind = serializers.ChoiceField(choices=HealthEventKind.choices)
    detail = serializers.CharField()
    started_at = serializers.DateTimeField()


class LeaseHealthSchema(serializers.Serializer):
    flagged = serializers.BooleanField(help_text="A node of this lease turned unhealthy while it held it.")
    open_events = HealthEventSchema(many=True, help_text="Health events still open on the lease's nodes.")
    sla_credit_gpu_hours = serializers.DecimalField(
        max_digits=14, decimal_places=3, help_text="GPU-hours spent on failing nodes until now."
    )
    sla_credit_so_far = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        help_text="Their price: the SLA credit accrued so far, credited on the month's invoice.",
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
    extendable_until = serializers.DateTimeField(
        allow_null=True,
        help_text="How far a live reserved lease can be extended right now (its end when it cannot "
        "be); null for any other lease.",
    )
    health = LeaseHealthSchema()
    replace_automatically = serializers.BooleanField(
        help_text="A node failing while it runs books a replacement at once (else one is offered)."
    )
    replaces = serializers.UUIDField(
        allow_null=True, help_text="The lease on a failed node this one was booked to replace."
    )


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

    def list(self, request: OrganizationRequest) -> Response:  # type: ignore[override]
        page = self.paginate_queryset(self.get_queryset()) or []
        facts = lease_facts(page)
        return self.get_paginated_response([lease_json(lease, facts) for lease in page])

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
            options=LeaseOptions(replace_automatically=data["replace_automatically"]),
        )
        # The booked lease knows the rows it wrote (see lease_book): rendered without reading back.
        return Response(lease_json(lease, _just_booked(lease)), status=status.HTTP_201_CREATED)


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


class LeaseReplaceApi(APIView):
    """Book the replacement offered for a running lease on a failed node: the same size, in the
    same region, for the rest of its window (on-demand: until released); honours Idempotency-Key."""

    permission_classes = [CanBook]

    @extend_schema(request=None, responses={201: LeaseSchema})
    def post(self, request: OrganizationRequest, lease_id: str) -> Response:
        return idempotent(request, request.organization, lambda: self._replace(request, lease_id))

    def _replace(self, request: OrganizationRequest, lease_id: str) -> Response:
        lease = lease_of_organization_or_404(request.organization, lease_id)
        replacement = lease_replacement_book(user=request.user, lease=lease)
        return Response(_fresh(replacement), status=status.HTTP_201_CREATED)
