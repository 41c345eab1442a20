from django.apps import AppConfig


class BillingConfig(AppConfig):
    """Prices, metering, invoices, credits, Stripe and finance exports."""

    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Booking (clusters, below billing) asks billing to be paid through this one registration.
        from billing.services.commitments import LeaseCharges
        from clusters.services.charging import charging_register

        charging_register(LeaseCharges())
