"""Forms of the staff finance page: the month to close and the period of exports and revenue."""

from datetime import UTC, date, datetime, time
from typing import cast

from django import forms

from billing.choices import InvoiceStatus


class CloseMonthForm(forms.Form):
    """A finished month to close (closing one again invoices only organizations it missed)."""

    month = forms.ChoiceField(label="Month to close")

    def __init__(self, *args: object, months: list[tuple[str, str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        cast(forms.ChoiceField, self.fields["month"]).choices = months


class PeriodForm(forms.Form):
    """Invoices whose period starts in [from, to) and usage hours in it (UTC days)."""

    period_from = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    period_to = forms.DateField(
        label="To (exclusive)", widget=forms.DateInput(attrs={"type": "date"}), help_text="UTC days."
    )

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        start, end = data.get("period_from"), data.get("period_to")
        if isinstance(start, date) and isinstance(end, date) and end <= start:
            self.add_error("period_to", "Choose a day after the start.")
        return data

    def bounds(self, default: tuple[date, date]) -> tuple[date, date]:
        """The chosen days, or the defaults when the form is empty or invalid."""
        if self.is_bound and self.is_valid():
            return self.cleaned_data["period_from"], self.cleaned_data["period_to"]
        return default


class InvoiceStateForm(forms.Form):
    """Invoices in one state."""

    status = forms.ChoiceField(
        label="State", required=False, choices=[("", "Every state"), *InvoiceStatus.choices]
    )


def midnight(day: date) -> datetime:
    """The first instant of a UTC day."""
    return datetime.combine(day, time.min, tzinfo=UTC)
