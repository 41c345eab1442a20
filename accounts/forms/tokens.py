"""The form that creates an API token."""

from datetime import UTC, datetime, time
from typing import Any

from django import forms

from accounts.choices import TokenScope, all_token_scopes


class ApiTokenForm(forms.Form):
    name = forms.CharField(label="Token name", max_length=100)
    scopes = forms.MultipleChoiceField(
        choices=TokenScope.choices,
        initial=all_token_scopes,
        widget=forms.CheckboxSelectMultiple,
        help_text="What programs holding it may do; your role limits it further.",
    )
    expires_at = forms.DateField(
        label="Expires on",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="It stops working at 00:00 UTC that day; leave empty for a token that does not expire.",
    )

    def token_options(self) -> dict[str, Any]:
        """The cleaned choices as `api_token_create`'s arguments."""
        day = self.cleaned_data.get("expires_at")
        return {
            "scopes": self.cleaned_data["scopes"],
            "expires_at": datetime.combine(day, time(), tzinfo=UTC) if day else None,
        }
