"""Booking API: availability, the capacity timeline, quotes, and leases (book, extend, release, cancel)."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import CanBook
from accounts.selectors import ssh_keys_of
from billing.quotes import quote
from billing.selectors import NoPrice
from clusters.capacity import Window
from clusters.choices import LeaseKind, LeaseState
from clusters.errors import BookingRefused, PriceMissing, QuotaExceeded
from clusters.idempotency import idempotent
from clusters.models import Lease, Region
from clusters.selectors import (
    availability_for,
    capacity_timeline,
    lease_of_organization_or_404,
    leases_of,
    region_or_none,
)
from clusters.services.booking import booking_window, lease_book, lease_cancel, lease_extend, lease_release
from voltpark.api import ApiError


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time that must carry its offset (2026-05-01T09:00:00Z or +02:00)."""

    def to_internal_value(self, value: Any) -> datetime:
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is not None and parsed.tzinfo is None:
            self.fail("naive")
        return super().to_internal_value(value)

    default_error_messages = {
        **serializers.DateTimeField.default_error_messages,
        "naive": "Give the time with its offset, such as 2026-05-01T09:00:00Z.",
    }


class RegionCodeField(serializers.SlugRelatedField):
    """A region's code, turned into the region."""

    default_error_messages = {
        **serializers.SlugRelatedField.default_error_messages,
        "does_not_exist": "No region has this code.",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(slug_field="code", queryset=Region.objects.all(), **kwargs)


class BookingSerializer(serializers.Serializer):
    region = RegionCodeField()
    gpus = serializers.IntegerField(min_value=1, max_value=10_000)
    kind = serializers.ChoiceField(choices=LeaseKind.choices)
    start = AwareDateTimeField(required=False, allow_null=True)
    end = AwareDateTimeField(required=False, allow_null=True)
    ssh_key_ids = serializers.ListField(child=serializers.UUIDField(), required=False, default=list)

    def validate_ssh_key_ids(self, ids: list[Any]) -> list[Any]:
        keys = list(ssh_keys_of(self.context["request"].user).filter(public_id__in=ids))
        unknown = {str(i) for i in ids} - {str(k.public_id) for k in keys}
        if unknown:
            raise ValidationError(f"Not one of your SSH keys: {', '.join(sorted(unknown))}.")
        return keys

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        with service_errors():
            data["window"] = booking_window(
                kind=data["kind"], start=data.get("start"), end=data.get("end"), gpus=data["gpus"]
            )
        return data


class ExtendSerializer(serializers.Serializer):
    end = AwareDateTimeField()


class AvailabilityQuerySerializer(serializers.Serializer):
    region = RegionCodeField()
    gpus = serializers.IntegerField(min_value=1, max_value=10_000)
    start = AwareDateTimeField(required=False)
    end = AwareDateTimeField(required=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        data.setdefault("start", timezone.now())
        if data.get("end") is not None and data["end"] <= data["start"]:
            raise ValidationError({"end": "The end must be after the start."})
        return data


def lease_json(lease: Lease) -> dict[str, Any]:
    """A lease as the API shows it, with the GPUs it holds on each node."""
    nodes: dict[str, list[int]] = {}
    for allocation in lease.allocations.all():
        nodes.setdefault(allocation.node.hostname, []).append(allocation.gpu.index)
    return {
        "id": str(lease.public_id),
        "region": lease.region.code,
        "gpus": lease.gpus,
        "kind": lease.kind,
        "state": lease.state,
        "start": lease.start.isoformat(),
        "end": lease.end.isoformat() if lease.end else None,
        "price_per_gpu_hour": str(lease.price_per_gpu_hour),
        "currency": lease.currency,
        "nodes": [
            {"hostname": host, "gpu_indices": sorted(indices)} for host, indices in sorted(nodes.items())
        ],
        "ssh_key_ids": [str(key.public_id) for key in lease.ssh_keys.all()],
        "created_at": lease.created_at.isoformat(),
    }


class LeaseNodeSchema(serializers.Serializer):
    hostname = serializers.CharField()
    gpu_indices = serializers.ListField(child=serializers.IntegerField())


class LeaseSchema(serializers.Serializer):
    id = serializers.UUIDField()
    region = serializers.CharField()
    gpus = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=LeaseKind.choices)
    state = serializers.ChoiceField(choices=LeaseState.choices)
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


REFUSAL_STATUS = {QuotaExceeded: status.HTTP_403_FORBIDDEN}


@contextmanager
def service_errors() -> Iterator[None]:
    """Turn a booking rule's refusal into the API's 403/409 with a code (a Django ValidationError
    becomes 400 `invalid` in the shared handler, voltpark/api.py)."""
    try:
        yield
    except BookingRefused as refusal:
        raise ApiError(
            code=refusal.code,
            detail=refusal.detail,
            status_code=REFUSAL_STATUS.get(type(refusal), status.HTTP_409_CONFLICT),
            **refusal.extra(),
        ) from None


def _fresh(lease: Lease) -> dict[str, Any]:
    return lease_json(leases_of(lease.organization).get(pk=lease.pk))


class AvailabilityApi(APIView):
    """How many GPUs of a region are free for a whole window, and whether a lease of `gpus` fits."""

    permission_classes = [CanBook]

    @extend_schema(parameters=[AvailabilityQuerySerializer], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        query = AvailabilityQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        window = Window(start=data["start"], end=data.get("end"))
        found = availability_for(
            region=data["region"], window=window, gpus=data["gpus"], organization=request.organization
        )
        return Response(
            {
                "region": data["region"].code,
                "gpus": data["gpus"],
                "start": window.start.isoformat(),
                "end": window.end.isoformat() if window.end else None,
                "free_gpus": found.free_gpus,
                "max_gpus_available": found.max_gpus_available,
                "can_place": found.can_place,
            }
        )


class TimelineApi(APIView):
    """Free GPUs of a region per hour for the next 14 days (the booking calendar)."""

    permission_classes = [CanBook]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, code: str) -> Response:
        region = region_or_none(code)
        if region is None:
            raise NotFound("No region has this code.")
        hours = capacity_timeline(region=region, organization=request.organization)
        return Response(
            {
                "region": region.code,
                "hours": [{"start": h.start.isoformat(), "free_gpus": h.free_gpus} for h in hours],
            }
        )


class QuoteApi(APIView):
    """What a booking would cost: GPUs × hours × the price per GPU-hour in force now."""

    permission_classes = [CanBook]

    @extend_schema(request=BookingSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request) -> Response:
        body = BookingSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data, window = body.validated_data, body.validated_data["window"]
        with service_errors():
            try:
                found = quote(
                    kind=data["kind"],
                    region=data["region"],
                    gpus=data["gpus"],
                    start=window.start,
                    end=window.end,
                )
            except NoPrice as error:
                raise PriceMissing(kind=data["kind"], region_code=data["region"].code) from error
        return Response(
            {
                "region": data["region"].code,
                "gpus": data["gpus"],
                "kind": data["kind"],
                "start": window.start.isoformat(),
                "end": window.end.isoformat() if window.end else None,
                "price_per_gpu_hour": str(found.price_per_gpu_hour),
                "hours": str(found.hours) if found.hours is not None else None,
                "per_hour": str(found.per_hour),
                "total": str(found.total) if found.total is not None else None,
                "currency": found.currency,
            }
        )


class LeaseListApi(ListAPIView):
    """The organization's leases (filter with ?state=), or book one (honours Idempotency-Key)."""

    permission_classes = [CanBook]
    serializer_class = LeaseSerializer

    def get_queryset(self) -> Any:
        state = self.request.query_params.get("state")
        if state and state not in LeaseState.values:
            raise ValidationError({"state": f"One of: {', '.join(LeaseState.values)}."})
        return leases_of(self.request.organization, state=state)

    @extend_schema(request=BookingSerializer, responses={201: LeaseSchema})
    def post(self, request: Request) -> Response:
        return idempotent(request, request.organization, lambda: self._book(request))

    def _book(self, request: Request) -> Response:
        body = BookingSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        with service_errors():
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
    def get(self, request: Request, lease_id: str) -> Response:
        return Response(lease_json(lease_of_organization_or_404(request.organization, lease_id)))


class _LeaseActionApi(APIView):
    """A POST that changes one of the organization's leases; honours Idempotency-Key."""

    permission_classes = [CanBook]

    def act(self, request: Request, lease: Lease) -> Lease:
        raise NotImplementedError

    @extend_schema(request=None, responses=LeaseSchema)
    def post(self, request: Request, lease_id: str) -> Response:
        return idempotent(request, request.organization, lambda: self._respond(request, lease_id))

    def _respond(self, request: Request, lease_id: str) -> Response:
        lease = lease_of_organization_or_404(request.organization, lease_id)
        with service_errors():
            changed = self.act(request, lease)
        return Response(_fresh(changed))


class LeaseExtendApi(_LeaseActionApi):
    """Move a reserved lease's end later, on the same GPUs."""

    @extend_schema(request=ExtendSerializer, responses=LeaseSchema)
    def post(self, request: Request, lease_id: str) -> Response:
        return super().post(request, lease_id)

    def act(self, request: Request, lease: Lease) -> Lease:
        body = ExtendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return lease_extend(user=request.user, lease=lease, end=body.validated_data["end"])


class LeaseReleaseApi(_LeaseActionApi):
    """End a running lease now (a scheduled one is cancelled)."""

    def act(self, request: Request, lease: Lease) -> Lease:
        return lease_release(user=request.user, lease=lease)


class LeaseCancelApi(_LeaseActionApi):
    """Cancel a scheduled lease before its start."""

    def act(self, request: Request, lease: Lease) -> Lease:
        return lease_cancel(user=request.user, lease=lease)
