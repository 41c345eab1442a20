"""The price book: the price per GPU-hour in force, and quotes computed from it."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import F, Q
from django.utils import timezone

from clusters.models import PriceBookEntry, Region
from core.money import amount_for, cents
from core.refusals import Refused


class NoPrice(Refused):
    """No price book entry covers this kind, region and instant."""

    code = "no_price"


def price_for(*, kind: str, region: Region, at: datetime, duration: timedelta | None = None) -> Decimal:
    """The GPU-hour price in force at `at` for a lease this long (None: on-demand, or any length).

    The region's own entries if it has any, else the general ones; among them the longest term
    tier the lease reaches (a week or more, 30 days or more), then the latest in force.
    """
    hours = 0 if duration is None else int(duration.total_seconds() // 3600)
    # One query: the region's own entries sort before the general ones (NULLs last).
    entry = (
        PriceBookEntry.objects.filter(kind=kind, effective_from__lte=at, min_hours__lte=hours)
        .filter(Q(region=region) | Q(region__isnull=True))
        .order_by(F("region").asc(nulls_last=True), "-min_hours", "-effective_from")
        .only("price_per_gpu_hour")
        .first()
    )
    if entry is None:
        raise NoPrice(f"No price is set for {kind} GPUs in {region.code}.")
    return entry.price_per_gpu_hour


def prices_for(
    *, kind: str, regions: Sequence[Region], at: datetime, duration: timedelta | None = None
) -> dict[int, Decimal]:
    """`price_for` of each region (by primary key) in one query; a region with no price is left out."""
    if not regions:
        return {}
    hours = 0 if duration is None else int(duration.total_seconds() // 3600)
    entries = (
        PriceBookEntry.objects.filter(kind=kind, effective_from__lte=at, min_hours__lte=hours)
        .filter(Q(region__in=regions) | Q(region__isnull=True))
        .order_by("-min_hours", "-effective_from")
        .values_list("region_id", "price_per_gpu_hour")
    )
    own: dict[int | None, Decimal] = {}
    for region_id, price in entries:
        own.setdefault(region_id, price)  # the first of each is its longest tier, latest in force
    general = own.get(None)
    found = {region.pk: own.get(region.pk, general) for region in regions}
    return {pk: price for pk, price in found.items() if price is not None}


CURRENCY = "USD"


@dataclass(frozen=True)
class Quote:
    """GPUs × hours × the price per GPU-hour; an on-demand quote has no hours or total, only a rate."""

    price_per_gpu_hour: Decimal
    gpus: int
    hours: Decimal | None
    per_hour: Decimal
    total: Decimal | None
    currency: str = CURRENCY


def quote(
    *, kind: str, region: Region, gpus: int, start: datetime, end: datetime | None, at: datetime | None = None
) -> Quote:
    """The price of `gpus` GPUs of `kind` in `region` over [start, end) at the price in force at `at` (now).

    The total is computed from exact minutes and rounded once, by core.money's rule (cent, half up).
    """
    duration = None if end is None else end - start
    price = price_for(kind=kind, region=region, at=at or timezone.now(), duration=duration)
    return quote_at_price(price=price, gpus=gpus, start=start, end=end)


def quote_at_price(*, price: Decimal, gpus: int, start: datetime, end: datetime | None) -> Quote:
    """The quote of `gpus` GPUs over [start, end) at a price already looked up (see `quote`)."""
    per_hour = cents(price * gpus)
    if end is None:
        return Quote(price_per_gpu_hour=price, gpus=gpus, hours=None, per_hour=per_hour, total=None)
    minutes = Decimal((end - start) // timedelta(minutes=1))
    total = amount_for(price * gpus * minutes * 60)  # GPU-seconds × price, as invoices bill
    hours = (minutes / 60).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    return Quote(price_per_gpu_hour=price, gpus=gpus, hours=hours, per_hour=per_hour, total=total)
