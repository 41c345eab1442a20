"""The booking body and its fields, shared by booking and quotes."""

from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from accounts.selectors.ssh_keys import ssh_keys_of
from clusters.choices import LeaseKind
from clusters.models import Region
from clusters.services.booking import booking_window


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time that must carry its offset (2026-05-01T09:00:00Z or +02:00)."""

    def to_internal_value(self, value: Any) -> datetime:
        try:
            parsed = parse_datetime(value) if isinstance(value, str) else None
        except ValueError:
            # Well-formed but impossible (2027-02-30, hour 25, minute 99): parse_datetime raises.
            self.fail("impossible")
        if parsed is not None and parsed.tzinfo is None:
            self.fail("naive")
        return super().to_internal_value(value)

    default_error_messages = {
        **serializers.DateTimeField.default_error_messages,
        "naive": "Give the time with its offset, such as 2026-05-01T09:00:00Z.",
        "impossible": "No such date and time: check the day of the month, the hour and the minute.",
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
    replace_automatically = serializers.BooleanField(
        required=False,
        default=False,
        help_text="If a node of the lease fails while it runs, book a replacement at once "
        "(else one is offered).",
    )

    def validate_ssh_key_ids(self, ids: list[Any]) -> list[Any]:
        keys = list(ssh_keys_of(self.context["request"].user).filter(public_id__in=ids))
        unknown = {str(i) for i in ids} - {str(k.public_id) for k in keys}
        if unknown:
            raise ValidationError(f"Not one of your SSH keys: {', '.join(sorted(unknown))}.")
        return keys

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        data["window"] = booking_window(
            kind=data["kind"], start=data.get("start"), end=data.get("end"), gpus=data["gpus"]
        )
        return data
