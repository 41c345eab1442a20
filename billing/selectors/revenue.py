"""Revenue and utilization by month and region."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, Sum
from django.db.models.functions import TruncMonth

from billing.models import UsageHour
from clusters.models import Region
from core.money import SECONDS_PER_HOUR, cents, gpu_hours
from core.periods import next_month


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


def _revenue_row(row: Mapping[str, Any], gpus: int, start: datetime, end: datetime) -> RevenueRow:
    month = row["month"]
    hours = Decimal((min(next_month(month), end) - max(month, start)).total_seconds()) / SECONDS_PER_HOUR
    return RevenueRow(
        month=month,
        region=row["region__code"],
        revenue=cents(row["amount"]),
        gpu_hours_sold=gpu_hours(row["seconds"]),
        gpu_hours_available=gpus * hours,
    )


def revenue_by_month(
    rows: list[RevenueRow], months: list[str]
) -> tuple[list[str], list[str], dict[str, dict[str, RevenueRow]]]:
    """The months (those given, empty ones too) and regions of a revenue summary, and each cell's row."""
    months = sorted(set(months) | {f"{row.month:%Y-%m}" for row in rows})
    regions = sorted({row.region for row in rows})
    cells: dict[str, dict[str, RevenueRow]] = {month: {} for month in months}
    for row in rows:
        cells[f"{row.month:%Y-%m}"][row.region] = row
    return months, regions, cells
