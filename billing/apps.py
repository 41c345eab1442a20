from django.apps import AppConfig


class BillingConfig(AppConfig):
    """Prices, metering, invoices, credits, Stripe and finance exports."""

    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Booking (clusters, below billing) asks billing through these two registrations: may this
        # booking be paid for (before anything is written), and charge what it commits to.
        from billing.services.commitments import LeaseCharges, booking_payment_check
        from clusters.services.booking import booking_check
        from clusters.services.charging import charging_register

        booking_check(booking_payment_check)
        charging_register(LeaseCharges())
