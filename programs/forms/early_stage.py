"""Forms of the early-stage program: the application, and staff's approve and reject."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django import forms
from django.utils import timezone

from accounts.models import GPU_QUOTA_MAX
from programs.models import NOTE_MAX_LENGTH, EarlyStageApplication


class EarlyStageApplicationForm(forms.ModelForm):
    class Meta:
        model = EarlyStageApplication
        fields = ["what_we_build", "stage", "funding", "gpus_wanted", "why"]
        labels = {
            "what_we_build": "What you are building",
            "stage": "Company stage",
            "funding": "Funding raised so far",
            "gpus_wanted": "GPUs you need at once",
            "why": "Why the program",
        }
        help_texts = {
            "funding": "In your own words, such as “$1.5M pre-seed” or “none yet”.",
            "why": "What the GPUs and credit would let you do.",
        }
        widgets = {
            "what_we_build": forms.Textarea(attrs={"rows": 3}),
            "why": forms.Textarea(attrs={"rows": 3}),
        }


DEFAULT_CREDIT = Decimal("5000.00")


DEFAULT_CREDIT_DAYS = 365


class ApproveForm(forms.Form):
    """Approve an application: the GPU quota, the credit grant and a note for the applicant."""

    gpu_quota = forms.IntegerField(
        label="GPU quota",
        min_value=1,
        max_value=GPU_QUOTA_MAX,
        help_text="Most GPUs the organization may hold at one instant.",
    )
    credit_amount = forms.DecimalField(
        label="Credit (USD)", min_value=Decimal("0.01"), max_digits=12, decimal_places=2
    )
    credit_expires_on = forms.DateField(
        label="Credit expires on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The credit is usable until 00:00 UTC that day.",
    )
    note = forms.CharField(
        label="Note to the applicant",
        required=False,
        max_length=NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean_credit_expires_on(self) -> date:
        day = self.cleaned_data["credit_expires_on"]
        if day <= timezone.now().date():
            raise forms.ValidationError("Choose a day after today.")
        return day

    @property
    def credit_expires_at(self) -> datetime:
        return datetime.combine(self.cleaned_data["credit_expires_on"], time.min, tzinfo=UTC)

    @staticmethod
    def initial_for(gpus_wanted: int, current_quota: int) -> dict[str, object]:
        """What an admin approves most often: the GPUs asked for and a year of the standard credit."""
        return {
            "gpu_quota": max(gpus_wanted, current_quota),
            "credit_amount": DEFAULT_CREDIT,
            "credit_expires_on": timezone.now().date() + timedelta(days=DEFAULT_CREDIT_DAYS),
        }


class RejectForm(forms.Form):
    """Reject an application with a note the applicant receives."""

    note = forms.CharField(
        label="Why it is rejected",
        max_length=NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="The applicant receives this note by email.",
    )
