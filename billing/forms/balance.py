"""Forms of the billing page: a top-up's amount, and the owner's spend settings."""

from decimal import Decimal

from django import forms
from django.conf import settings


class TopUpForm(forms.Form):
    """How much to add to the balance (paid on Stripe's page)."""

    amount = forms.DecimalField(
        label="Amount (USD)",
        max_digits=12,
        decimal_places=2,
        initial=Decimal("100"),
        min_value=Decimal(settings.TOP_UP_MIN_USD),
        max_value=Decimal(settings.TOP_UP_MAX_USD),
    )


def _money(label: str, help_text: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=label, max_digits=12, decimal_places=2, required=False, min_value=0, help_text=help_text
    )


class SpendSettingsForm(forms.Form):
    """The spend limit, the low-balance warning and automatic top-up; empty turns one off."""

    monthly_spend_limit = _money("Monthly spend limit (USD)", "Bookings past it are refused. Empty: none.")
    low_balance_threshold = _money("Email me below (USD)", "A low-balance email. Empty: none.")
    auto_top_up_threshold = _money("Top up when below (USD)", "Automatic top-up with the card on file.")
    auto_top_up_amount = _money("Top up by (USD)", "Empty (both): no automatic top-up.")
