"""Pages about the fleet."""

from datetime import datetime
from decimal import Decimal

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.selectors.viewer import viewer_of
from clusters.choices import LeaseKind
from clusters.models import Region
from clusters.selectors.capacity import gpus_free_now, regions_with_capacity, visitor_pools
from clusters.selectors.prices import NoPrice, price_for


def home(request: HttpRequest) -> HttpResponse:
    """The regions, the GPUs the visitor could book in each right now, and the prices."""
    now = timezone.now()
    free_now = gpus_free_now(pools=visitor_pools(viewer_of(request).organization))
    cards = [
        {"region": region, "free_now": free_now.get(region.pk, 0), "prices": _prices(region, now)}
        for region in regions_with_capacity()
    ]
    return render(request, "home.html", {"cards": cards})


def _prices(region: Region, at: datetime) -> dict[str, Decimal]:
    prices = {}
    for kind in LeaseKind:
        try:
            prices[kind.label] = price_for(kind=kind, region=region, at=at)
        except NoPrice:
            continue
    return prices
