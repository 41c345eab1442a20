"""Capacity offerings API: the earliest windows of N GPUs for H hours that can be booked now."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import CanBook, OrganizationRequest
from clusters.api.booking import AwareDateTimeField, RegionCodeField
from clusters.selectors.capacity import is_valid_size
from clusters.selectors.offerings import OFFERINGS_PER_REGION, capacity_offerings
from core.durations import duration_words

MAX_GPUS = 10_000


class OfferingsQuerySerializer(serializers.Serializer):
    gpus = serializers.IntegerField(min_value=1, max_value=MAX_GPUS)
    hours = serializers.IntegerField(min_value=1)
    region = RegionCodeField(required=False)
    earliest_start = AwareDateTimeField(required=False)
    latest_start = AwareDateTimeField(required=False)
    per_region = serializers.IntegerField(min_value=1, max_value=OFFERINGS_PER_REGION, default=1)

    def validate_gpus(self, gpus: int) -> int:
        if not is_valid_size(gpus):
            raise ValidationError(
                "Ask for 1, 2, 4 or 8 GPUs on one node, or a multiple of 8 (whole nodes) above 8."
            )
        return gpus

    def validate_hours(self, hours: int) -> int:
        longest = settings.BOOKING_MAX_DURATION
        # Compared in seconds first: timedelta() of a huge number of hours overflows.
        if hours * 3600 > longest.total_seconds():
            raise ValidationError(f"A lease lasts at most {duration_words(longest)}.")
        if timedelta(hours=hours) < settings.BOOKING_MIN_DURATION:
            raise ValidationError(f"A lease lasts at least {duration_words(settings.BOOKING_MIN_DURATION)}.")
        return hours

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        earliest, latest = data.get("earliest_start"), data.get("latest_start")
        if earliest is not None and latest is not None and latest < earliest:
            raise ValidationError({"latest_start": "The latest start must not be before the earliest start."})
        furthest = timezone.now() + settings.BOOKING_MAX_AHEAD
        if earliest is not None and earliest > furthest:
            ahead = duration_words(settings.BOOKING_MAX_AHEAD)
            raise ValidationError({"earliest_start": f"A lease may start at most {ahead} ahead."})
        return data


class OfferingSchema(serializers.Serializer):
    region = serializers.CharField()
    region_name = serializers.CharField()
    pool = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    gpus = serializers.IntegerField()
    price_per_gpu_hour = serializers.DecimalField(max_digits=10, decimal_places=4)
    total_price = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()


class OfferingsSchema(serializers.Serializer):
    gpus = serializers.IntegerField()
    hours = serializers.IntegerField()
    offerings = OfferingSchema(many=True)


class OfferingsApi(APIView):
    """The earliest window of `gpus` GPUs for `hours` hours in each region (with `per_region`, up to
    3 windows one after the other), sorted by start.

    Each can be booked as a reserved lease with its region, start and end; booking it books
    exactly that window, or answers 409 `no_capacity` with fresh offerings.
    """

    permission_classes = [CanBook]
    throttle_scope = "availability"

    @extend_schema(parameters=[OfferingsQuerySerializer], responses=OfferingsSchema)
    def get(self, request: OrganizationRequest) -> Response:
        query = OfferingsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        region = data.get("region")
        found = capacity_offerings(
            organization=request.organization,
            gpus=data["gpus"],
            length=timedelta(hours=data["hours"]),
            regions=[region] if region is not None else None,
            earliest_start=data.get("earliest_start"),
            latest_start=data.get("latest_start"),
            per_region=data["per_region"],
        )
        return Response(
            {"gpus": data["gpus"], "hours": data["hours"], "offerings": [o.as_json() for o in found]}
        )
