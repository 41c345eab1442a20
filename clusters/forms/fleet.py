"""Forms of the staff fleet pages: filters and the reason for a drain."""

from typing import cast

from django import forms

from clusters.choices import NodeState
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
        cast(forms.ChoiceField, self.fields["region"]).choices = _any(regions, "Every region")
