"""The early-stage program application, as an owner fills it in."""

from django import forms

from accounts.models import EarlyStageApplication


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
