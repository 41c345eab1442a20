"""What customers are billed: usage hours, invoices, credits, Stripe."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.choices import CreditSource, InvoiceKind, InvoiceStatus, LineKind
from core.db import PublicIdModel


class UsageHour(models.Model):
    """A lease's GPU-seconds in one clock hour, at its booked price; materialized from allocations.

    `amount` is GPU-seconds × price / 3600 kept to 12 decimal places for reading; invoice lines
    are computed from the exact products (core/money.py), never from these rounded values.
    """

    lease = models.ForeignKey("clusters.Lease", on_delete=models.PROTECT, related_name="usage_hours")
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    region = models.ForeignKey("clusters.Region", on_delete=models.PROTECT, related_name="+")
    hour = models.DateTimeField(help_text="Start of the clock hour (UTC).")
    gpu_seconds = models.BigIntegerField()
    price_per_gpu_hour = models.DecimalField(max_digits=10, decimal_places=4)
    amount = models.DecimalField(max_digits=24, decimal_places=12)
    metered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["lease", "hour"], name="usage_once_per_lease_hour")]
        indexes = [
            models.Index(fields=["organization", "hour"], name="usage_org_hour"),
            models.Index(fields=["hour"], name="usage_hour"),
        ]

    def __str__(self) -> str:
        return f"lease {self.lease_id} {self.hour:%Y-%m-%d %H:00} {self.gpu_seconds} GPU-s"


class CreditGrant(PublicIdModel):
    """Money an organization may spend on invoices until it expires, oldest grant first."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="credit_grants"
    )
    source = models.CharField(max_length=20, choices=CreditSource, default=CreditSource.EARLY_STAGE)
    amount = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(0)])
    remaining = models.DecimalField(max_digits=12, decimal_places=2)
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=models.F("amount")),
                name="credit_remaining_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("granted_at")), name="credit_expires_after_grant"
            ),
        ]
        indexes = [models.Index(fields=["organization", "granted_at"], name="credit_org_granted")]

    def __str__(self) -> str:
        return f"${self.remaining} of ${self.amount} until {self.expires_at:%Y-%m-%d}"


class Invoice(PublicIdModel):
    """One organization's bill for one month (or a credit note correcting one); immutable once open."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="invoices"
    )
    kind = models.CharField(max_length=20, choices=InvoiceKind, default=InvoiceKind.INVOICE)
    status = models.CharField(max_length=10, choices=InvoiceStatus, default=InvoiceStatus.DRAFT)
    number = models.CharField(max_length=30, unique=True, null=True, blank=True)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    currency = models.CharField(max_length=3, default="USD")
    subtotal = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    credits = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    corrects = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="credit_notes"
    )
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    issued_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    stripe_invoice_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    stripe_hosted_url = models.URLField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period_start"],
                condition=Q(kind=InvoiceKind.INVOICE),
                name="invoice_once_per_org_month",
            ),
            models.CheckConstraint(
                condition=Q(status=InvoiceStatus.DRAFT) | Q(number__isnull=False),
                name="invoice_finalized_has_number",
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="invoice_total_not_negative"),
        ]
        indexes = [
            models.Index(fields=["period_start", "status"], name="invoice_period_status"),
            models.Index(fields=["organization", "period_start"], name="invoice_org_period"),
        ]

    def __str__(self) -> str:
        return self.number or f"draft {self.public_id}"

    @property
    def is_finalized(self) -> bool:
        return self.status != InvoiceStatus.DRAFT


class InvoiceLine(models.Model):
    """A line of an invoice: a lease's usage, or a credit (SLA, program) as a negative amount."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=LineKind)
    description = models.CharField(max_length=300)
    lease = models.ForeignKey(
        "clusters.Lease", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    region = models.ForeignKey(
        "clusters.Region", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    health_event = models.ForeignKey(
        "clusters.HealthEvent", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    credit_grant = models.ForeignKey(
        CreditGrant, on_delete=models.PROTECT, null=True, blank=True, related_name="lines"
    )
    gpus = models.PositiveIntegerField(null=True, blank=True)
    gpu_hours = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    price_per_gpu_hour = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_position_once")
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"


class InvoiceNumberCounter(models.Model):
    """The last number given in one series and year; locked FOR UPDATE so numbers have no gaps."""

    series = models.CharField(max_length=10)
    year = models.PositiveIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "year"], name="invoice_counter_once")]

    def __str__(self) -> str:
        return f"{self.series}-{self.year}: {self.last_number}"


class InvoicePdf(models.Model):
    """The rendered PDF of a finalized invoice (it never changes, so it is rendered once)."""

    invoice = models.OneToOneField(Invoice, on_delete=models.CASCADE, related_name="pdf")
    content = models.BinaryField()
    rendered_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"PDF of {self.invoice}"


class MonthClose(models.Model):
    """A month that was closed; its row is the lock that serializes two closes of one month."""

    period_start = models.DateTimeField(unique=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    invoices_created = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"close of {self.period_start:%Y-%m}"


class StripeCustomer(models.Model):
    """The Stripe customer of an organization (one each)."""

    organization = models.OneToOneField(
        "accounts.Organization", on_delete=models.CASCADE, related_name="stripe_customer"
    )
    stripe_id = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.stripe_id


class StripeEvent(models.Model):
    """A webhook event received from Stripe; stored once by its id, so a replay does nothing."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"
