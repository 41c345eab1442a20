from django.apps import AppConfig


class BillingConfig(AppConfig):
    """Prices, metering, invoices, credits, Stripe and finance exports."""

    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"
