"""Capacity API: availability for a window, the 14-day timeline, quotes."""

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import CanBook, OrganizationRequest
from accounts.choices import TokenScope
from clusters.api.booking import AwareDateTimeField, BookingSerializer, RegionCodeField
from clusters.choices import LeaseKind
from clusters.selectors.capacity import Window, availability_for, capacity_timeline
from clusters.selectors.fleet import region_or_none
from clusters.selectors.prices import quote


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


class AvailabilitySchema(serializers.Serializer):
    region = serializers.CharField()
    gpus = serializers.IntegerField(help_text="The size asked about.")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(allow_null=True, help_text="Null: open-ended (on-demand).")
    free_gpus = serializers.IntegerField(help_text="GPUs free for the whole window, across the region.")
    max_gpus_available = serializers.IntegerField(help_text="The largest lease that would fit now.")
    can_place = serializers.BooleanField(help_text="Whether a lease of `gpus` fits.")


class TimelineHourSchema(serializers.Serializer):
    start = serializers.DateTimeField()
    free_gpus = serializers.IntegerField()


class TimelineSchema(serializers.Serializer):
    region = serializers.CharField()
    hours = TimelineHourSchema(many=True, help_text="One per hour for the next 14 days.")


class QuoteSchema(serializers.Serializer):
    region = serializers.CharField()
    gpus = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=LeaseKind.choices)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(allow_null=True)
    price_per_gpu_hour = serializers.DecimalField(max_digits=10, decimal_places=4)
    hours = serializers.DecimalField(
        max_digits=12, decimal_places=4, allow_null=True, help_text="Null for on-demand (no end)."
    )
    per_hour = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="What the lease costs an hour."
    )
    total = serializers.DecimalField(
        max_digits=14, decimal_places=2, allow_null=True, help_text="Null for on-demand."
    )
    currency = serializers.CharField()


class AvailabilityApi(APIView):
    """How many GPUs of a region are free for a whole window, and whether a lease of `gpus` fits."""

    permission_classes = [CanBook]
    throttle_scope = "availability"

    @extend_schema(parameters=[AvailabilityQuerySerializer], responses=AvailabilitySchema)
    def get(self, request: OrganizationRequest) -> Response:
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
    throttle_scope = "timeline"

    @extend_schema(responses=TimelineSchema)
    def get(self, request: OrganizationRequest, code: str) -> Response:
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
    throttle_scope = "quotes"
    token_scope = TokenScope.READ  # a question about prices, asked with POST for its body

    @extend_schema(request=BookingSerializer, responses=QuoteSchema)
    def post(self, request: OrganizationRequest) -> Response:
        body = BookingSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data, window = body.validated_data, body.validated_data["window"]
        found = quote(
            kind=data["kind"], region=data["region"], gpus=data["gpus"], start=window.start, end=window.end
        )
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
