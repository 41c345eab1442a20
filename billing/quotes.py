"""Quotes: what a lease would cost at today's price book, before it is booked."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from billing.selectors import price_for
from clusters.models import Region

CENT = Decimal("0.01")
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

    The total is computed from exact minutes and rounded once, to the cent, half up.
    """
    price = price_for(kind=kind, region=region, at=at or timezone.now())
    per_hour = (price * gpus).quantize(CENT, rounding=ROUND_HALF_UP)
    if end is None:
        return Quote(price_per_gpu_hour=price, gpus=gpus, hours=None, per_hour=per_hour, total=None)
    minutes = Decimal((end - start) // timedelta(minutes=1))
    total = (price * gpus * minutes / 60).quantize(CENT, rounding=ROUND_HALF_UP)
    hours = (minutes / 60).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    return Quote(price_per_gpu_hour=price, gpus=gpus, hours=hours, per_hour=per_hour, total=total)
