"""Reads of prices, usage, invoices and revenue, scoped to who is asking."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth

from accounts.models import Organization, User
from accounts.selectors import get_by_public_id_or_404
from billing.models import Invoice, InvoiceLine, PriceBookEntry, UsageHour
from billing.money import SECONDS_PER_HOUR, cents, gpu_hours
from billing.periods import next_month
from clusters.models import Region


class NoPrice(LookupError):
    """No price book entry covers this kind, region and instant."""


def price_for(*, kind: str, region: Region, at: datetime) -> Decimal:
    """The GPU-hour price in force at `at`: the region's own if it has one, else the general one."""
    # One query: the region's own entries sort before the general ones (NULLs last).
    entry = (
        PriceBookEntry.objects.filter(kind=kind, effective_from__lte=at)
        .filter(Q(region=region) | Q(region__isnull=True))
        .order_by(F("region").asc(nulls_last=True), "-effective_from")
        .only("price_per_gpu_hour")
        .first()
    )
    if entry is None:
        raise NoPrice(f"No {kind} price for {region.code} at {at.isoformat()}")
    return entry.price_per_gpu_hour


@dataclass(frozen=True)
class Scope:
    """Whose money a request may see: one organization, or every one (staff finance)."""

    organization: Organization | None
    everyone: bool = False


def billing_scope(user: User, organization: Organization | None) -> Scope:
    """Staff finance see every organization; anyone else only the organization they act in."""
    if user.is_authenticated and (user.is_finance_staff or user.is_superuser):
        return Scope(organization=None, everyone=True)
    return Scope(organization=organization)


def invoices_visible_to(scope: Scope) -> QuerySet[Invoice]:
    """The invoices (and credit notes) the scope may see, newest period first."""
    invoices = Invoice.objects.select_related("organization")
    if not scope.everyone:
        invoices = invoices.filter(organization=scope.organization)
    return invoices.order_by("-period_start", "number", "pk")


def invoice_visible_or_404(scope: Scope, public_id: str) -> Invoice:
    """One invoice the scope may see; another organization's id is a 404."""
    return get_by_public_id_or_404(invoices_visible_to(scope), public_id)


@dataclass(frozen=True)
class ExportFilter:
    """The filters every export and listing shares: a period range, statuses, a region."""

    period_from: datetime | None = None
    period_to: datetime | None = None
    statuses: tuple[str, ...] = ()
    region: str | None = None


def filtered_invoices(scope: Scope, wanted: ExportFilter) -> QuerySet[Invoice]:
    """Invoices whose period starts in [from, to), with a status and a line in a region if asked."""
    invoices = invoices_visible_to(scope)
    if wanted.period_from:
        invoices = invoices.filter(period_start__gte=wanted.period_from)
    if wanted.period_to:
        invoices = invoices.filter(period_start__lt=wanted.period_to)
    if wanted.statuses:
        invoices = invoices.filter(status__in=wanted.statuses)
    if wanted.region:
        invoices = invoices.filter(lines__region__code=wanted.region).distinct()
    return invoices


def filtered_invoice_lines(scope: Scope, wanted: ExportFilter) -> QuerySet[InvoiceLine]:
    """Lines of the filtered invoices (only the region's lines when a region is asked)."""
    lines = InvoiceLine.objects.filter(
        invoice__in=filtered_invoices(
            scope,
            ExportFilter(
                period_from=wanted.period_from,
                period_to=wanted.period_to,
                statuses=wanted.statuses,
            ),
        )
    )
    if wanted.region:
        lines = lines.filter(region__code=wanted.region)
    return lines.order_by("invoice__period_start", "invoice_id", "position")


def usage_hours_visible_to(scope: Scope, wanted: ExportFilter) -> QuerySet[UsageHour]:
    """Usage rows in [from, to) by hour, in a region if asked."""
    rows = UsageHour.objects.all()
    if not scope.everyone:
        rows = rows.filter(organization=scope.organization)
    if wanted.period_from:
        rows = rows.filter(hour__gte=wanted.period_from)
    if wanted.period_to:
        rows = rows.filter(hour__lt=wanted.period_to)
    if wanted.region:
        rows = rows.filter(region__code=wanted.region)
    return rows.order_by("hour", "lease_id")


def usage_by_hour(organization: Organization, start: datetime, end: datetime) -> QuerySet:
    """The organization's GPU-seconds and amount per clock hour in [start, end)."""
    rows = UsageHour.objects.filter(organization=organization, hour__gte=start, hour__lt=end)
    return rows.values("hour").annotate(gpu_seconds=Sum("gpu_seconds"), amount=Sum("amount")).order_by("hour")


@dataclass(frozen=True)
class RevenueRow:
    """One month in one region: money billed for usage, GPU-hours sold and the fleet's utilization."""

    month: datetime
    region: str
    revenue: Decimal
    gpu_hours_sold: Decimal
    gpu_hours_available: Decimal

    @property
    def utilization(self) -> Decimal:
        if not self.gpu_hours_available:
            return Decimal("0")
        return (self.gpu_hours_sold / self.gpu_hours_available).quantize(Decimal("0.0001"))


def revenue_summary(start: datetime, end: datetime) -> list[RevenueRow]:
    """Revenue and utilization by month and region over [start, end); for staff finance.

    Available GPU-hours are the region's GPUs × the hours of the month inside [start, end).
    """
    gpus = dict(Region.objects.annotate(n=Count("clusters__nodes__gpus")).values_list("code", "n"))
    sold = (
        UsageHour.objects.filter(hour__gte=start, hour__lt=end)
        .annotate(month=TruncMonth("hour"))
        .values("month", "region__code")
        .annotate(seconds=Sum("gpu_seconds"), amount=Sum("amount"))
        .order_by("month", "region__code")
    )
    return [_revenue_row(row, gpus.get(row["region__code"], 0), start, end) for row in sold]


def _revenue_row(row: dict, gpus: int, start: datetime, end: datetime) -> RevenueRow:
    month = row["month"]
    hours = Decimal((min(next_month(month), end) - max(month, start)).total_seconds()) / SECONDS_PER_HOUR
    return RevenueRow(
        month=month,
        region=row["region__code"],
        revenue=cents(row["amount"]),
        gpu_hours_sold=gpu_hours(row["seconds"]),
        gpu_hours_available=gpus * hours,
    )
