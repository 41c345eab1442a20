"""Reads of the staff finance page: months and their close, invoice counts."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from billing.choices import InvoiceKind, InvoiceStatus
from billing.models import Invoice, MonthClose
from core.periods import month_of, next_month


@dataclass(frozen=True)
class MonthStatus:
    """One month: whether and when it was closed, and the invoices it has."""

    start: datetime
    close: MonthClose | None
    invoices: int
    total: Decimal


@dataclass(frozen=True)
class StatusCount:
    """How many invoices (and credit notes) are in one state, and their total."""

    status: str
    label: str
    count: int
    total: Decimal


def past_months(now: datetime, count: int) -> list[datetime]:
    """The starts of the `count` months before the one containing `now`, newest first."""
    months: list[datetime] = []
    start = month_of(now)
    for _ in range(count):
        start = month_of(start - timedelta(days=1))
        months.append(start)
    return months


def month_statuses(months: list[datetime]) -> list[MonthStatus]:
    """The close of each month and its invoices' count and total, in two queries."""
    closes = {close.period_start: close for close in MonthClose.objects.filter(period_start__in=months)}
    invoiced: dict[datetime, Mapping[str, Any]] = {
        row["period_start"]: row
        for row in Invoice.objects.filter(kind=InvoiceKind.INVOICE, period_start__in=months)
        .values("period_start")
        .annotate(n=Count("pk"), total=Sum("total"))
    }
    return [
        MonthStatus(
            start=month,
            close=closes.get(month),
            invoices=invoiced.get(month, {}).get("n", 0),
            total=invoiced.get(month, {}).get("total") or Decimal("0.00"),
        )
        for month in months
    ]


def invoice_status_counts() -> list[StatusCount]:
    """Every state with its count and total (zero rows included), in one query."""
    totals = Invoice.objects.aggregate(
        **{f"n_{s}": Count("pk", filter=Q(status=s)) for s in InvoiceStatus.values},
        **{f"t_{s}": Sum("total", filter=Q(status=s)) for s in InvoiceStatus.values},
    )
    return [
        StatusCount(status, label, totals[f"n_{status}"], totals[f"t_{status}"] or Decimal("0.00"))
        for status, label in InvoiceStatus.choices
    ]


def invoices_for_finance(status: str = "") -> QuerySet[Invoice]:
    """Every organization's invoices and credit notes, newest period first, in one state if asked."""
    invoices = Invoice.objects.select_related("organization")
    if status:
        invoices = invoices.filter(status=status)
    return invoices.order_by("-period_start", "-number", "-pk")


def months_between(start: datetime, end: datetime) -> list[str]:
    """Every month (YYYY-MM) that [start, end) touches."""
    months, month = [], month_of(start)
    while month < end:
        months.append(f"{month:%Y-%m}")
        month = next_month(month)
    return months
