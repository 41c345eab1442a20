"""Forms of the lease pages: extend, add a teammate's key, and the staff's lease filters."""

from typing import Any, cast

from django import forms
from django.db.models import QuerySet

from accounts.models import Organization, SshKey
from clusters.choices import LeaseKind, LeaseState
from clusters.forms.booking import LocalDateTimeField, ZoneField, to_utc
from clusters.forms.fleet import _any
from clusters.models import Region


class ExtendForm(forms.Form):
    """A reserved lease's new end, typed in the viewer's zone."""

    end = LocalDateTimeField(label="New end")
    tz = ZoneField()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            data["end"] = to_utc(data["end"], data["tz"])
        return data


class TeammateKeyField(forms.ModelChoiceField):
    def label_from_instance(self, obj: SshKey) -> str:
        return f"{obj.user.email}: {obj.name} ({obj.fingerprint})"


class LeaseKeyForm(forms.Form):
    """A teammate's key (any member's) to add to a live lease."""

    ssh_key = TeammateKeyField(
        label="Key", queryset=SshKey.objects.none(), to_field_name="public_id", empty_label=None
    )

    def __init__(self, *args: Any, addable: QuerySet[SshKey], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(TeammateKeyField, self.fields["ssh_key"]).queryset = addable


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
        cast(forms.ChoiceField, self.fields["region"]).choices = _any(regions, "Every region")
        cast(forms.ChoiceField, self.fields["organization"]).choices = _any(
            organizations, "Every organization"
        )

    def filters(self) -> dict[str, str]:
        """The valid filters (an unknown value is ignored, as if not given)."""
        if self.is_valid():
            return {name: value for name, value in self.cleaned_data.items() if value}
        return {name: value for name, value in self.cleaned_data.items() if value and name not in self.errors}
