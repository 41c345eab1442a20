"""The queued-request form: size, kind and length, region or any, how long to wait, keys."""

from typing import Any, cast

from django import forms

from accounts.models import User
from accounts.selectors.ssh_keys import ssh_keys_of
from clusters.choices import LeaseKind
from clusters.forms.booking import KeyChoiceField, LocalDateTimeField, RegionChoiceField, ZoneField, to_utc
from clusters.models import Region


class LeaseRequestForm(forms.Form):
    """A request as the page takes it; the service checks the same rules as the API."""

    region = RegionChoiceField(
        queryset=Region.objects.order_by("code"),
        to_field_name="code",
        label="Region",
        required=False,
        empty_label="Any region",
    )
    gpus = forms.IntegerField(
        label="GPUs",
        min_value=1,
        max_value=10_000,
        initial=8,
        help_text="1, 2, 4 or 8 on one node; above 8, a multiple of 8 (whole nodes in one cluster).",
    )
    kind = forms.ChoiceField(
        label="Kind", choices=LeaseKind.choices, initial=LeaseKind.RESERVED, widget=forms.RadioSelect
    )
    hours = forms.IntegerField(
        label="Hours", min_value=1, required=False, help_text="How long the reserved lease lasts once booked."
    )
    not_after = LocalDateTimeField(
        label="Book it by",
        required=False,
        help_text="If it is not booked by then it expires; empty: in 24 hours.",
    )
    tz = ZoneField()
    ssh_keys = KeyChoiceField(
        label="SSH keys to install",
        queryset=None,
        to_field_name="public_id",
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelMultipleChoiceField, self.fields["ssh_keys"]).queryset = ssh_keys_of(user)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        if data["kind"] == LeaseKind.ON_DEMAND:
            data["hours"] = None  # hidden for on-demand; a value left in it does not count
        data["not_after"] = to_utc(data.get("not_after"), data["tz"])
        return data
