"""Forms of the staff pages about the fleet and every organization's leases."""

from django import forms

from accounts.models import Organization
from clusters.choices import LeaseKind, LeaseState, NodeState
from clusters.models import Region


class ReasonForm(forms.Form):
    """Why a node is drained or returned to service; kept in the audit trail."""

    reason = forms.CharField(label="Reason", max_length=200, help_text="Kept in the audit trail.")


def _any(choices: list[tuple[str, str]], label: str) -> list[tuple[str, str]]:
    return [("", label), *choices]


class FleetFilterForm(forms.Form):
    """Narrow the fleet grid to a region or a node state."""

    region = forms.ChoiceField(label="Region", required=False)
    state = forms.ChoiceField(label="State", required=False, choices=_any(NodeState.choices, "Any state"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        regions = list(Region.objects.order_by("code").values_list("code", "name"))
        self.fields["region"].choices = _any(regions, "Every region")


class LeaseFilterForm(forms.Form):
    """Filter every organization's leases by state, region, organization and kind."""

    state = forms.ChoiceField(label="State", required=False, choices=_any(LeaseState.choices, "Any state"))
    region = forms.ChoiceField(label="Region", required=False)
    organization = forms.ChoiceField(label="Organization", required=False)
    kind = forms.ChoiceField(label="Kind", required=False, choices=_any(LeaseKind.choices, "Any kind"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        regions = list(Region.objects.order_by("code").values_list("code", "code"))
        organizations = list(Organization.objects.order_by("name").values_list("slug", "name"))
        self.fields["region"].choices = _any(regions, "Every region")
        self.fields["organization"].choices = _any(organizations, "Every organization")

    def filters(self) -> dict[str, str]:
        """The valid filters (an unknown value is ignored, as if not given)."""
        if self.is_valid():
            return {name: value for name, value in self.cleaned_data.items() if value}
        return {name: value for name, value in self.cleaned_data.items() if value and name not in self.errors}
