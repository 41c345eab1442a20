"""Forms of quota requests: an owner's request, and staff's approval (the rejection is RejectForm's)."""

from datetime import UTC, date, datetime, time

from django import forms
from django.utils import timezone

from accounts.models import GPU_QUOTA_MAX
from programs.models import ANSWER_MAX_LENGTH, NOTE_MAX_LENGTH


class QuotaRequestForm(forms.Form):
    """How many GPUs, until when and why."""

    gpus = forms.IntegerField(
        label="GPUs you need at once",
        min_value=1,
        max_value=GPU_QUOTA_MAX,
        help_text="The quota you ask for: the most GPUs your organization may hold at one instant.",
    )
    needed_until = forms.DateField(
        label="Needed until",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Leave empty if you need them for good.",
    )
    why = forms.CharField(
        label="What they are for",
        max_length=ANSWER_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Such as “a 64-GPU training run for two weeks from the 10th”.",
    )


class QuotaApproveForm(forms.Form):
    """Approve a quota request: the quota, an optional expiry day and a note."""

    gpu_quota = forms.IntegerField(label="GPU quota", min_value=1, max_value=GPU_QUOTA_MAX)
    expires_on = forms.DateField(
        label="Quota expires on",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="At 00:00 UTC that day the quota goes back to what it was; empty: it stays.",
    )
    note = forms.CharField(
        label="Note to the owner",
        required=False,
        max_length=NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean_expires_on(self) -> date | None:
        day = self.cleaned_data.get("expires_on")
        if day is not None and day <= timezone.now().date():
            raise forms.ValidationError("Choose a day after today, or leave it empty.")
        return day

    @property
    def expires_at(self) -> datetime | None:
        day = self.cleaned_data.get("expires_on")
        return datetime.combine(day, time.min, tzinfo=UTC) if day else None
