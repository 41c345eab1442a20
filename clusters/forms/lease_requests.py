"""The queued-request form: the booking form's size, kind and keys (LeaseFieldsForm), and its own
region or any, length and how long to wait."""

from typing import Any

from django import forms

from clusters.choices import LeaseKind
from clusters.forms.booking import LeaseFieldsForm, LocalDateTimeField, RegionChoiceField, to_utc
from clusters.models import Region


class LeaseRequestForm(LeaseFieldsForm):
    """A request as the page takes it; the service checks the same rules as the API."""

    initial_kind = LeaseKind.RESERVED
    field_order = ["region", "gpus", "kind", "hours", "not_after", "tz", "ssh_keys"]

    region = RegionChoiceField(
        queryset=Region.objects.order_by("code"),
        to_field_name="code",
        label="Region",
        required=False,
        empty_label="Any region",
    )
    hours = forms.IntegerField(
        label="Hours", min_value=1, required=False, help_text="How long the reserved lease lasts once booked."
    )
    not_after = LocalDateTimeField(
        label="Book it by",
        required=False,
        help_text="If it is not booked by then it expires; empty: in 24 hours.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        if data["kind"] == LeaseKind.ON_DEMAND:
            data["hours"] = None  # hidden for on-demand; a value left in it does not count
        data["not_after"] = to_utc(data.get("not_after"), data["tz"])
        return data
