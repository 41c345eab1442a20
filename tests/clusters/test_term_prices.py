"""Term prices: per-region on-demand and reserved prices with duration tiers, quoted and booked alike."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from clusters.choices import LeaseKind
from clusters.models import Lease, PriceBookEntry, Region
from clusters.selectors.offerings import capacity_offerings
from clusters.selectors.prices import price_for, quote
from clusters.services.fleet import PRICES_FROM


@pytest.fixture
def tiers(seeded_fleet) -> Region:
    texas = Region.objects.get(code="us-tx-1")
    for hours, price in ((0, "1.9500"), (168, "1.8500"), (720, "1.7500")):
        PriceBookEntry.objects.create(
            kind=LeaseKind.RESERVED,
            region=texas,
            min_hours=hours,
            price_per_gpu_hour=price,
            effective_from=PRICES_FROM,
        )
    return texas


@pytest.mark.parametrize(
    ("days", "price"),
    [(1, "1.9500"), (6.9, "1.9500"), (7, "1.8500"), (29, "1.8500"), (30, "1.7500"), (60, "1.7500")],
)
def test_a_reserved_lease_gets_the_longest_tier_it_reaches(tiers, days, price) -> None:
    found = price_for(kind=LeaseKind.RESERVED, region=tiers, at=timezone.now(), duration=timedelta(days=days))
    assert found == Decimal(price)


def test_a_region_without_its_own_prices_uses_the_general_ones(tiers) -> None:
    virginia = Region.objects.get(code="us-va-1")
    week = timedelta(days=7)
    assert price_for(kind=LeaseKind.RESERVED, region=virginia, at=timezone.now(), duration=week) == Decimal(
        "1.9900"
    )


def test_the_quote_and_the_booked_lease_use_the_same_tier(tiers, alice, api_as) -> None:
    start = (timezone.now() + timedelta(days=1)).replace(second=0, microsecond=0)
    end = start + timedelta(days=8)
    priced = quote(kind=LeaseKind.RESERVED, region=tiers, gpus=8, start=start, end=end)
    response = api_as(alice).post(
        "/api/v1/leases/",
        {
            "region": "us-tx-1",
            "gpus": 8,
            "kind": "reserved",
            "start": start.isoformat(),
            "end": end.isoformat(),
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    lease = Lease.objects.get()
    assert priced.price_per_gpu_hour == lease.price_per_gpu_hour == Decimal("1.8500")
    assert priced.total == Decimal("1.8500") * 8 * 24 * 8


def test_an_offering_of_a_week_is_quoted_at_the_week_tier_booking_charges(tiers, acme, big_quota) -> None:
    week = timedelta(days=8)
    texas, virginia = tiers, Region.objects.get(code="us-va-1")
    found = {o.region.code: o for o in capacity_offerings(organization=acme, gpus=8, length=week)}
    booked = price_for(kind=LeaseKind.RESERVED, region=texas, at=timezone.now(), duration=week)
    assert found[texas.code].price_per_gpu_hour == booked == Decimal("1.8500")
    assert found[texas.code].total_price == Decimal("1.8500") * 8 * 24 * 8
    assert found[virginia.code].price_per_gpu_hour == Decimal("1.9900")  # the general price, no tiers


def test_a_tier_for_on_demand_is_refused_by_the_database(tiers) -> None:
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        PriceBookEntry.objects.create(
            kind=LeaseKind.ON_DEMAND, region=tiers, min_hours=168, price_per_gpu_hour="1"
        )
