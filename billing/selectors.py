"""Reads of prices."""

from datetime import datetime
from decimal import Decimal

from django.db.models import Q

from billing.models import PriceBookEntry
from clusters.models import Region


class NoPrice(LookupError):
    """No price book entry covers this kind, region and instant."""


def price_for(*, kind: str, region: Region, at: datetime) -> Decimal:
    """The GPU-hour price in force at `at`: the region's own if it has one, else the general one."""
    entries = PriceBookEntry.objects.filter(kind=kind, effective_from__lte=at).filter(
        Q(region=region) | Q(region__isnull=True)
    )
    regional = entries.filter(region=region).order_by("-effective_from").first()
    entry = regional or entries.filter(region__isnull=True).order_by("-effective_from").first()
    if entry is None:
        raise NoPrice(f"No {kind} price for {region.code} at {at.isoformat()}")
    return entry.price_per_gpu_hour
