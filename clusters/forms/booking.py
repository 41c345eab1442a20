"""The booking form: times typed in the viewer's zone, keys, size and kind."""

from datetime import UTC, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from django import forms
from django.core.exceptions import ValidationError

from accounts.models import User
from accounts.selectors.ssh_keys import ssh_keys_of
from clusters.choices import LeaseKind
from clusters.models import Region
from clusters.selectors.capacity import Window
from clusters.services.booking import booking_window
from core.forms import add_service_error
from core.refusals import Refused
from core.timezones import UTC as UTC_ZONE
from core.timezones import zone_named

MIN_YEAR, MAX_YEAR = 2000, 2999


class LocalDateTimeField(forms.Field):
    """A wall-clock time as a datetime-local input sends it (2026-05-01T09:00), left naive.

    The form turns it into an instant once it knows the viewer's zone (another field).
    """

    widget = forms.DateTimeInput(attrs={"type": "datetime-local", "step": "60"}, format="%Y-%m-%dT%H:%M")
    default_error_messages = {"invalid": "Enter a date and time, such as 2026-05-01 09:00."}

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            return value.replace(tzinfo=None)
        try:
            parsed = datetime.fromisoformat(str(value).strip().replace(" ", "T"))
        except ValueError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None
        # Years far outside booking's horizon could not even be moved to UTC (datetime overflows).
        if parsed.tzinfo is not None or not MIN_YEAR <= parsed.year <= MAX_YEAR:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return parsed


class ZoneField(forms.CharField):
    """The viewer's IANA time zone, filled in by static/js/timezone.js; UTC when empty."""

    def __init__(self, **kwargs: Any) -> None:
        attrs = {"data-detect-tz": ""}
        super().__init__(required=False, initial="UTC", widget=forms.HiddenInput(attrs=attrs), **kwargs)

    def clean(self, value: Any) -> ZoneInfo:
        name = super().clean(value)
        if not name:
            return UTC_ZONE
        zone = zone_named(name)
        if zone is None:
            raise ValidationError(f"Unknown time zone {name!r}.")
        return zone


def to_utc(local: datetime | None, zone: ZoneInfo) -> datetime | None:
    """The instant a wall-clock time in `zone` names, in UTC."""
    return None if local is None else local.replace(tzinfo=zone).astimezone(UTC)


class KeyChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name or 'key'} ({obj.fingerprint})"


class RegionChoiceField(forms.ModelChoiceField):
    """A region by its code, shown as people know it: "Texas (us-tx-1)"."""

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.code})"


class LeaseFieldsForm(forms.Form):
    """What booking and queueing a request both ask: the size, the kind, the keys and the viewer's zone."""

    initial_kind: str = LeaseKind.ON_DEMAND

    gpus = forms.IntegerField(
        label="GPUs",
        min_value=1,
        max_value=10_000,
        initial=8,
        help_text="1, 2, 4 or 8 on one node; above 8, a multiple of 8 (whole nodes in one cluster).",
    )
    kind = forms.ChoiceField(label="Kind", choices=LeaseKind.choices, widget=forms.RadioSelect)
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
        self.fields["kind"].initial = self.initial_kind
        keys = ssh_keys_of(user)
        cast(forms.ModelMultipleChoiceField, self.fields["ssh_keys"]).queryset = keys
        # The booker's keys are ticked from the start: a lease nobody can log in to is no use.
        self.fields["ssh_keys"].initial = [key.public_id for key in keys]


class BookingForm(LeaseFieldsForm):
    """A booking as the page takes it: the same rules as the API, through booking_window."""

    field_order = ["region", "gpus", "kind", "start", "end", "until", "tz", "ssh_keys"]

    region = RegionChoiceField(
        queryset=Region.objects.order_by("code"), to_field_name="code", label="Region", empty_label=None
    )
    start = LocalDateTimeField(label="Start", required=False)
    end = LocalDateTimeField(label="End", required=False)
    until = LocalDateTimeField(
        label="Until",
        required=False,
        help_text="Empty: it runs until you release it. With a time it ends then, and can run on GPUs "
        "reserved from then on.",
    )
    replace_automatically = forms.BooleanField(
        label="If a node fails while the lease runs, book a replacement at once",
        required=False,
        help_text="The same GPUs in the same region for the rest of the lease, with the same keys; "
        "unticked, a replacement is offered to you instead. The failed node's time is credited either way.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        zone, kind = data["tz"], data["kind"]
        if kind == LeaseKind.ON_DEMAND:
            # Each kind's own fields are hidden for the other; values left in them do not count.
            data["start"], data["end"] = None, to_utc(data.get("until"), zone)
        else:
            data["start"], data["end"] = to_utc(data.get("start"), zone), to_utc(data.get("end"), zone)
        try:
            data["window"] = booking_window(
                kind=kind, start=data["start"], end=data["end"], gpus=data["gpus"]
            )
        except ValidationError as error:
            self.refuse(error)
        return data

    def refuse(self, error: ValidationError | Refused) -> None:
        """A refusal on the form; booking names an on-demand lease's end `end`, here its Until field."""
        on_demand = self.cleaned_data.get("kind") == LeaseKind.ON_DEMAND
        if on_demand and isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            error = ValidationError(
                {
                    ("until" if field == "end" else field): problems
                    for field, problems in error.message_dict.items()
                }
            )
        add_service_error(self, error)

    def refuse_no_key_ticked(self) -> bool:
        """Booking (not the live check) with every key unticked: the booker meant none, so ask."""
        if self.cleaned_data["ssh_keys"] or not self.fields["ssh_keys"].initial:
            return False
        self.add_error("ssh_keys", "Tick at least one key: it is how you log in to the lease's nodes.")
        return True

    @property
    def window(self) -> Window:
        return self.cleaned_data["window"]
