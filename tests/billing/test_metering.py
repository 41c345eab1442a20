"""Hourly metering: one row per lease and clock hour, derived from allocation periods only."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from billing.models import UsageHour
from billing.services.metering import usage_meter
from clusters.choices import LeaseState
from tests.billing.factories import make_lease, release

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LATER = datetime(2026, 4, 1, tzinfo=UTC)


def rows(lease):
    return list(UsageHour.objects.filter(lease=lease).order_by("hour").values_list("hour", "gpu_seconds"))


def test_it_writes_one_row_per_lease_and_clock_hour_with_the_overlap(acme) -> None:
    lease = make_lease(
        organization=acme, start=T0 + timedelta(minutes=30), end=T0 + timedelta(hours=2), gpus=2
    )
    usage_meter(start=T0, end=T0 + timedelta(hours=3), now=LATER)
    assert rows(lease) == [(T0, 2 * 1800), (T0 + timedelta(hours=1), 2 * 3600)]


def test_the_amount_of_a_row_is_seconds_times_price_over_3600(acme) -> None:
    lease = make_lease(organization=acme, start=T0, end=T0 + timedelta(seconds=7), price="2.4900")
    usage_meter(start=T0, end=T0 + timedelta(hours=1), now=LATER)
    row = UsageHour.objects.get(lease=lease)
    assert row.price_per_gpu_hour == Decimal("2.4900")
    assert row.amount == Decimal("0.004841666667")  # 7 × 2.49 / 3600 = 0.0048416666…


def test_running_it_again_changes_nothing(acme) -> None:
    make_lease(organization=acme, start=T0, end=T0 + timedelta(hours=5), gpus=8)
    first = usage_meter(start=T0, end=T0 + timedelta(hours=6), now=LATER)
    before = list(UsageHour.objects.values_list("lease", "hour", "gpu_seconds", "amount", "metered_at"))
    second = usage_meter(start=T0, end=T0 + timedelta(hours=6), now=LATER + timedelta(days=1))
    assert (first.written, second.written, second.removed) == (5, 0, 0)
    assert (
        list(UsageHour.objects.values_list("lease", "hour", "gpu_seconds", "amount", "metered_at")) == before
    )


def test_a_released_lease_stops_costing_at_the_release_instant(acme) -> None:
    lease = make_lease(organization=acme, start=T0, end=None, gpus=1)
    usage_meter(start=T0, end=T0 + timedelta(hours=2), now=T0 + timedelta(minutes=90))
    assert rows(lease) == [(T0, 3600), (T0 + timedelta(hours=1), 1800)]
    release(lease, T0 + timedelta(minutes=70, seconds=5))
    usage_meter(start=T0, end=T0 + timedelta(hours=4), now=T0 + timedelta(hours=4))
    assert rows(lease) == [(T0, 3600), (T0 + timedelta(hours=1), 605)]


def test_an_open_on_demand_lease_is_clipped_at_now(acme) -> None:
    lease = make_lease(organization=acme, start=T0, end=None, gpus=4)
    usage_meter(start=T0, end=T0 + timedelta(hours=10), now=T0 + timedelta(minutes=15, seconds=30))
    assert rows(lease) == [(T0, 4 * 930)]


def test_a_failed_or_cancelled_lease_costs_nothing(acme) -> None:
    make_lease(organization=acme, start=T0, end=T0 + timedelta(hours=2), state=LeaseState.FAILED)
    make_lease(organization=acme, start=T0, end=T0 + timedelta(hours=2), state=LeaseState.CANCELLED)
    usage_meter(start=T0, end=T0 + timedelta(hours=2), now=LATER)
    assert not UsageHour.objects.exists()


def test_a_row_whose_allocations_stopped_being_live_is_removed(acme) -> None:
    lease = make_lease(organization=acme, start=T0, end=T0 + timedelta(hours=2))
    usage_meter(start=T0, end=T0 + timedelta(hours=2), now=LATER)
    lease.allocations.update(is_live=False)
    result = usage_meter(start=T0, end=T0 + timedelta(hours=2), now=LATER)
    assert result.removed == 2 and not UsageHour.objects.filter(lease=lease).exists()


def test_billing_precision_is_the_second(acme) -> None:
    start = T0 + timedelta(seconds=10, microseconds=900_000)
    lease = make_lease(
        organization=acme, start=start, end=start + timedelta(seconds=59, microseconds=200_000)
    )
    usage_meter(start=T0, end=T0 + timedelta(hours=1), now=LATER)
    assert rows(lease) == [(T0, 60)]  # bounds truncated to 10 s and 70 s


def test_it_only_touches_the_hours_it_was_asked_for(acme) -> None:
    lease = make_lease(organization=acme, start=T0, end=T0 + timedelta(hours=3))
    usage_meter(start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=2), now=LATER)
    assert rows(lease) == [(T0 + timedelta(hours=1), 3600)]
