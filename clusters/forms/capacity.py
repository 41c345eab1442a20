"""Forms of the staff capacity page: a region's early-stage share."""

from decimal import Decimal

from django import forms

from clusters.models import Region


class PoolShareForm(forms.Form):
    """The early-stage pool's share of a region's nodes, in percent; previewed before it is applied."""

    region = forms.ModelChoiceField(
        queryset=Region.objects.order_by("code"), to_field_name="code", label="Region", empty_label=None
    )
    percent = forms.DecimalField(
        label="Early-stage share (%)",
        min_value=Decimal(0),
        max_value=Decimal(100),
        decimal_places=1,
        help_text="Of the region's nodes. Free nodes move at once; the others when their bookings end.",
    )
    apply = forms.BooleanField(required=False, widget=forms.HiddenInput)

    @property
    def share(self) -> Decimal:
        return (self.cleaned_data["percent"] / 100).quantize(Decimal("0.001"))
