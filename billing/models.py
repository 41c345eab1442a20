"""What customers are billed: usage hours, invoices, credits, Stripe."""

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.choices import (
    CreditSource,
    InvoiceKind,
    InvoiceStatus,
    LedgerKind,
    LineKind,
    PaymentTerms,
    TopUpMethod,
    TopUpStatus,
)
from core.db import PublicIdModel


class UsageHour(models.Model):
    """A lease's GPU-seconds in one clock hour, at its booked price; materialized from allocations.

    `amount` is GPU-seconds × price / 3600 kept to 12 decimal places for reading; invoice lines
    are computed from the exact products (core/money.py), never from these rounded values.
    """

    # None of the three keys is checked by the database per row: the metering statement writes
    # them from the live allocation's own lease row (clusters_allocation checks its lease), leases
    # are never deleted, and the foreign-key check at commit was the close's largest single cost
    # (500,000 lookups of clusters_lease; docs/benchmarks.md). Django still protects them on delete.
    lease = models.ForeignKey(
        "clusters.Lease",
        on_delete=models.PROTECT,
        related_name="usage_hours",
        db_constraint=False,
        db_index=False,
    )
    organization = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    region = models.ForeignKey(
        "clusters.Region", on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    hour = models.DateTimeField(help_text="Start of the clock hour (UTC).")
    gpu_seconds = models.BigIntegerField()
    price_per_gpu_hour = models.DecimalField(max_digits=10, decimal_places=4)
    amount = models.DecimalField(max_digits=24, decimal_places=12)
    metered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # Two indexes only, each row costing the month close its writes: (lease, hour) serves
        # metering's matching and every read of one organization (through its leases); a BRIN on hour
        # serves the reads of a window across everyone (close, revenue, exports), as rows arrive
        # in hour order (hourly metering) and a month's rows are written together (the close).
        constraints = [models.UniqueConstraint(fields=["lease", "hour"], name="usage_once_per_lease_hour")]
        indexes = [BrinIndex(fields=["hour"], name="usage_hour_brin")]

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
    expired_at = models.DateTimeField(
        null=True, blank=True, help_text="When its unspent credit left the balance."
    )

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
    due_at = models.DateTimeField(null=True, blank=True, help_text="Invoice terms: when payment is due.")
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    stripe_invoice_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    stripe_hosted_url = models.URLField(max_length=500, blank=True)
    stripe_credit_note_id = models.CharField(max_length=100, blank=True, help_text="Credit notes only.")

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


class BillingAccount(models.Model):
    """How an organization pays: its balance (the sum of its ledger), its card, terms and limits.

    `balance` is changed only together with a ledger entry, in the same transaction, under this
    row's lock (billing/services/ledger.py); `entries` is the number of the last entry.
    """

    organization = models.OneToOneField(
        "accounts.Organization", on_delete=models.PROTECT, primary_key=True, related_name="billing_account"
    )
    balance = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    entries = models.PositiveIntegerField(default=0)
    terms = models.CharField(max_length=10, choices=PaymentTerms, default=PaymentTerms.PREPAID)
    net_days = models.PositiveSmallIntegerField(default=30, help_text="Days to pay an invoice (invoiced).")
    credit_limit = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=Decimal("0.00"),
        help_text="How far an invoiced organization may owe before bookings are refused.",
    )
    monthly_spend_limit = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    low_balance_threshold = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    auto_top_up_threshold = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    auto_top_up_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    auto_top_up_failures = models.PositiveSmallIntegerField(default=0)
    # The card on file (Stripe keeps the card; we keep what the page shows of it).
    card_payment_method = models.CharField(max_length=100, blank=True)
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    card_exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    card_exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    # Running out: each set once per episode by a conditional update, cleared when money comes in.
    low_balance_warned_at = models.DateTimeField(null=True, blank=True)
    runway_24h_warned_at = models.DateTimeField(null=True, blank=True)
    runway_1h_warned_at = models.DateTimeField(null=True, blank=True)
    exhausted_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspended_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(credit_limit__gte=0), name="account_credit_limit_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(monthly_spend_limit__isnull=True) | Q(monthly_spend_limit__gte=0),
                name="account_spend_limit_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(auto_top_up_amount__isnull=True) | Q(auto_top_up_amount__gt=0),
                name="account_auto_top_up_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.balance} USD ({self.terms})"

    @property
    def has_card(self) -> bool:
        return bool(self.card_payment_method)


class LedgerEntry(models.Model):
    """One movement of an organization's balance; append-only, numbered 1, 2, 3... per organization.

    `floor` is the lowest balance the entry may leave: a booking's commitment may not overdraw
    (0, or minus the credit limit on invoice terms), while usage already run, a refund or a
    dispute are facts that may (no floor). The CHECK makes the database refuse anything else.
    """

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    sequence = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=LedgerKind)
    amount = models.DecimalField(max_digits=14, decimal_places=2, help_text="Positive adds to the balance.")
    balance_after = models.DecimalField(max_digits=14, decimal_places=2)
    floor = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)
    period_start = models.DateTimeField(
        null=True, blank=True, help_text="The month whose invoice bills this charge."
    )
    covers_until = models.DateTimeField(
        null=True, blank=True, help_text="A commitment: the end of the window it pays for."
    )
    description = models.CharField(max_length=300)
    lease = models.ForeignKey(
        "clusters.Lease", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    credit_grant = models.ForeignKey(
        CreditGrant, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    external_id = models.CharField(
        max_length=120, null=True, blank=True, help_text="The Stripe object (or our key) it records, once."
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(fields=["organization", "sequence"], name="ledger_sequence_once"),
            models.UniqueConstraint(
                fields=["kind", "external_id"],
                condition=Q(external_id__isnull=False),
                name="ledger_external_once",
            ),
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero"),
            models.CheckConstraint(
                condition=Q(floor__isnull=True) | Q(balance_after__gte=models.F("floor")),
                name="ledger_not_below_floor",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "period_start", "kind"], name="ledger_org_period_kind"),
            models.Index(fields=["lease", "kind"], name="ledger_lease_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.organization_id}#{self.sequence} {self.kind} {self.amount}"


class MonthlyUsageCharge(models.Model):
    """How much of an organization's on-demand usage in a month the ledger has debited so far.

    Debits are the difference between this and the month's usage so far rounded once per lease
    (core/money.py), so the month's debits add up to its invoice's usage lines to the cent.
    """

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    period_start = models.DateTimeField()
    debited = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    metered_until = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period_start"], name="usage_charge_once_per_month"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.period_start:%Y-%m}: {self.debited}"


class TopUp(PublicIdModel):
    """Money an organization pays in: a Stripe Checkout payment or an automatic top-up attempt."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    method = models.CharField(max_length=10, choices=TopUpMethod)
    status = models.CharField(max_length=10, choices=TopUpStatus, default=TopUpStatus.PENDING)
    amount = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(0)])
    created_at = models.DateTimeField(default=timezone.now)
    settled_at = models.DateTimeField(null=True, blank=True)
    stripe_checkout_session = models.CharField(max_length=120, null=True, blank=True, unique=True)
    stripe_payment_intent = models.CharField(max_length=120, null=True, blank=True, unique=True)
    failure = models.CharField(max_length=300, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="top_up_positive")]
        indexes = [models.Index(fields=["organization", "created_at"], name="top_up_org_created")]

    def __str__(self) -> str:
        return f"{self.amount} USD {self.method} {self.status}"


class InvoiceReminder(models.Model):
    """A payment reminder sent for an invoice, `days_from_due` days from its due date (negative: before)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="reminders")
    days_from_due = models.SmallIntegerField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["invoice", "days_from_due"], name="invoice_reminder_once")
        ]

    def __str__(self) -> str:
        return f"{self.invoice} {self.days_from_due:+d} days"
