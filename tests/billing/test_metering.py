"""Hourly metering: one row per lease and clock hour, derived from allocation periods only."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange

from billing.models import UsageHour
from billing.services.metering import usage_meter
from clusters.choices import LeaseState
from clusters.models import Allocation
from tests.billing.factories import make_lease, release
from tests.factories import NodeFactory, OrganizationFactory
from tests.races import errors_of, race

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


def test_a_lease_whose_gpus_held_different_periods_sums_each_gpu_in_the_hour(acme) -> None:
    # One of two GPUs was replaced at 10:20 (remediation): the old allocation ends there and the new
    # one starts, so the hour holds three periods of the same lease.
    lease = make_lease(organization=acme, start=T0, end=T0 + timedelta(hours=2), gpus=2)
    old = lease.allocations.order_by("gpu__index").last()
    swap = T0 + timedelta(minutes=20)
    old.period = DateTimeTZRange(T0, swap, "[)")
    old.save(update_fields=["period"])
    spare = NodeFactory.create(cluster=old.node.cluster).gpus.get(index=0)
    Allocation.objects.create(
        lease=lease, gpu=spare, node=spare.node, period=DateTimeTZRange(swap, T0 + timedelta(hours=1), "[)")
    )
    usage_meter(start=T0, end=T0 + timedelta(hours=2), now=LATER)
    assert rows(lease) == [(T0, 3600 + 1200 + 2400), (T0 + timedelta(hours=1), 3600)]


def test_a_shortened_hour_is_rewritten_and_an_emptied_one_removed(acme) -> None:
    lease = make_lease(organization=acme, start=T0, end=T0 + timedelta(hours=2))
    usage_meter(start=T0, end=T0 + timedelta(hours=2), now=LATER)
    release(lease, T0 + timedelta(minutes=45))
    result = usage_meter(start=T0, end=T0 + timedelta(hours=2), now=LATER)
    assert (result.written, result.removed) == (1, 1)
    assert rows(lease) == [(T0, 2700)]
    assert UsageHour.objects.get(lease=lease).amount == Decimal("1.500000000000")  # 2700 × 2.00 / 3600


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_four_runs_of_the_same_hours_at_once_write_each_lease_hour_once() -> None:
    # Runs take turns on an advisory lock: each inserts only what the ones before it did not.
    organization = OrganizationFactory.create()
    leases = [
        make_lease(organization=organization, start=T0, end=T0 + timedelta(hours=n), gpus=n)
        for n in (1, 2, 3)
    ]
    results = race([lambda: usage_meter(start=T0, end=T0 + timedelta(hours=3), now=LATER)] * 4)
    assert errors_of(results) == []
    assert sorted(result.written for result in results) == [0, 0, 0, 1 + 2 + 3]
    assert [len(rows(lease)) for lease in leases] == [1, 2, 3]
    assert sum(UsageHour.objects.values_list("gpu_seconds", flat=True)) == (1 + 4 + 9) * 3600
