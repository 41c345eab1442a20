"""Queued lease requests API: queue one, list and read them with their place in line, cancel one."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import CanBook, OrganizationRequest
from accounts.selectors.ssh_keys import ssh_keys_of
from clusters.api.booking import AwareDateTimeField, RegionCodeField
from clusters.api.idempotency import idempotent
from clusters.choices import LeaseKind, LeaseRequestState
from clusters.models import LeaseRequest
from clusters.selectors.lease_requests import (
    lease_request_of_organization_or_404,
    lease_requests_of,
    queue_position,
)
from clusters.services.lease_requests import lease_request_cancel, lease_request_create

MAX_GPUS = 10_000


class LeaseRequestCreateSerializer(serializers.Serializer):
    gpus = serializers.IntegerField(min_value=1, max_value=MAX_GPUS)
    kind = serializers.ChoiceField(choices=LeaseKind.choices)
    hours = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    region = RegionCodeField(required=False, allow_null=True)
    not_after = AwareDateTimeField(required=False, allow_null=True)
    ssh_key_ids = serializers.ListField(child=serializers.UUIDField(), required=False, default=list)

    def validate_ssh_key_ids(self, ids: list[Any]) -> list[Any]:
        keys = list(ssh_keys_of(self.context["request"].user).filter(public_id__in=ids))
        unknown = {str(i) for i in ids} - {str(k.public_id) for k in keys}
        if unknown:
            raise ValidationError(f"Not one of your SSH keys: {', '.join(sorted(unknown))}.")
        return keys


def lease_request_json(request: LeaseRequest) -> dict[str, Any]:
    """A request as the API shows it, with its place in line while queued."""
    return {
        "id": str(request.public_id),
        "state": request.state,
        "gpus": request.gpus,
        "kind": request.kind,
        "hours": request.hours,
        "region": request.region.code if request.region else None,
        "not_after": request.not_after.isoformat(),
        "position": queue_position(request),
        "lease": str(request.lease.public_id) if request.lease else None,
        "ssh_key_ids": [str(key.public_id) for key in request.ssh_keys.all()],
        "created_at": request.created_at.isoformat(),
        "decided_at": request.decided_at.isoformat() if request.decided_at else None,
    }


class LeaseRequestSchema(serializers.Serializer):
    id = serializers.UUIDField()
    state = serializers.ChoiceField(choices=LeaseRequestState.choices)
    gpus = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=LeaseKind.choices)
    hours = serializers.IntegerField(allow_null=True)
    region = serializers.CharField(allow_null=True, help_text="Empty: any region.")
    not_after = serializers.DateTimeField()
    position = serializers.IntegerField(
        allow_null=True, help_text="1: next in line; empty once it left the queue."
    )
    lease = serializers.UUIDField(allow_null=True)
    ssh_key_ids = serializers.ListField(child=serializers.UUIDField())
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)


class LeaseRequestSerializer(LeaseRequestSchema):
    """Renders with `lease_request_json`; the fields document it."""

    def to_representation(self, instance: LeaseRequest) -> dict[str, Any]:
        return lease_request_json(instance)


class LeaseRequestListApi(ListAPIView):
    """The organization's queued and past requests (filter with ?state=), or queue one."""

    permission_classes = [CanBook]
    serializer_class = LeaseRequestSerializer
    throttle_scopes = {"POST": "booking"}

    def get_queryset(self) -> Any:
        state = self.request.query_params.get("state")
        if state and state not in LeaseRequestState.values:
            raise ValidationError({"state": f"One of: {', '.join(LeaseRequestState.values)}."})
        return lease_requests_of(self.request.organization, state=state)  # type: ignore[attr-defined]

    @extend_schema(request=LeaseRequestCreateSerializer, responses={201: LeaseRequestSchema})
    def post(self, request: OrganizationRequest) -> Response:
        return idempotent(request, request.organization, lambda: self._create(request))

    def _create(self, request: OrganizationRequest) -> Response:
        body = LeaseRequestCreateSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        created = lease_request_create(
            user=request.user,
            organization=request.organization,
            gpus=data["gpus"],
            kind=data["kind"],
            hours=data.get("hours"),
            region=data.get("region"),
            not_after=data.get("not_after"),
            ssh_keys=data["ssh_key_ids"],
        )
        fresh = lease_request_of_organization_or_404(request.organization, created.public_id)
        return Response(lease_request_json(fresh), status=status.HTTP_201_CREATED)


class LeaseRequestDetailApi(APIView):
    """One of the organization's requests, with its place in line while queued and its lease once booked."""

    permission_classes = [CanBook]

    @extend_schema(responses=LeaseRequestSchema)
    def get(self, request: OrganizationRequest, request_id: str) -> Response:
        return Response(
            lease_request_json(lease_request_of_organization_or_404(request.organization, request_id))
        )


class LeaseRequestCancelApi(APIView):
    """Take a queued request out of the queue."""

    permission_classes = [CanBook]

    @extend_schema(request=None, responses=LeaseRequestSchema)
    def post(self, request: OrganizationRequest, request_id: str) -> Response:
        return idempotent(request, request.organization, lambda: self._cancel(request, request_id))

    def _cancel(self, request: OrganizationRequest, request_id: str) -> Response:
        found = lease_request_of_organization_or_404(request.organization, request_id)
        lease_request_cancel(user=request.user, request=found)
        return Response(
            lease_request_json(lease_request_of_organization_or_404(request.organization, request_id))
        )
