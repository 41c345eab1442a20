"""The audit trail page's filter: a date range and an action."""

from django import forms
from django.core.validators import RegexValidator

from accounts.selectors.audit import AuditFilter

ACTION_RULE = RegexValidator(
    r"^[a-z_]+(\.[a-z_]*)*$", "Name an action such as user.login, or a prefix such as user."
)


class AuditFilterForm(forms.Form):
    since = forms.DateField(
        required=False, label="From (UTC day)", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To (UTC day)", widget=forms.DateInput(attrs={"type": "date"})
    )
    action = forms.CharField(
        required=False,
        max_length=60,
        validators=[ACTION_RULE],
        help_text="user.login, or user. for all of them",
    )

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The end of the range is before its start.")
        return data

    def to_filter(self) -> AuditFilter:
        data = self.cleaned_data
        return AuditFilter(since=data.get("since"), until=data.get("until"), action=data.get("action") or "")
