"""An extension racing another organization's bookings of the same GPU-time: threads, own connections."""

from datetime import datetime, timedelta

import pytest

from accounts.models import AuditEntry, Organization, User
from clusters.choices import LeaseKind
from clusters.models import Allocation, Lease
from clusters.services.booking import lease_book, lease_extend
from clusters.services.refusals import NoCapacity, NotExtendable
from tests.clusters.helpers import RegionFleet, build_fleet, later, overlapping_allocations
from tests.races import race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROUNDS = 4
COMPETING_SIZES = [8, 4, 2, 1]  # Globex's bookings for the hour right after Acme's lease


def book(
    user: User, organization: Organization, fleet: RegionFleet, gpus: int, start: datetime, end: datetime
) -> Lease:
    return lease_book(
        user=user,
        organization=organization,
        region=fleet.region,
        gpus=gpus,
        kind=LeaseKind.RESERVED,
        start=start,
        end=end,
    )


def test_an_extension_racing_bookings_of_the_next_hour_wins_or_loses_each_gpu_cleanly(
    alice: User, acme: Organization, charlie: User, globex: Organization, big_quota: None
) -> None:
    fleet = build_fleet(clusters=1, nodes_per_cluster=2)  # two nodes of 8 GPUs
    # The other node is full for every round: after each lease's end only its own GPUs are free.
    book(charlie, globex, fleet, 8, later(-1), later(0, days=ROUNDS + 2))
    for round_ in range(1, ROUNDS + 1):
        start, end = later(0, days=round_), later(2, days=round_)
        lease = book(alice, acme, fleet, 8, start, end)
        gpu_ids = set(lease.allocations.values_list("gpu_id", flat=True))
        results = race(
            [lambda lease=lease, end=end: lease_extend(user=alice, lease=lease, end=end + timedelta(hours=1))]
            + [
                lambda gpus=gpus, end=end: book(charlie, globex, fleet, gpus, end, end + timedelta(hours=1))
                for gpus in COMPETING_SIZES
            ]
        )
        extended, bookings = results[0], results[1:]
        assert isinstance(extended, Lease | NotExtendable), extended
        assert all(isinstance(result, Lease | NoCapacity) for result in bookings), bookings
        won = [result for result in bookings if isinstance(result, Lease)]
        row = Lease.objects.get(pk=lease.pk)
        ends = set(
            Allocation.objects.filter(lease=lease, is_live=True).values_list("period__endswith", flat=True)
        )
        taken = Allocation.objects.filter(lease__in=won, is_live=True)
        if isinstance(extended, Lease):  # the extension won every contested GPU-hour
            assert won == [] and row.end == end + timedelta(hours=1) and ends == {row.end}
        else:  # a booking got there first: the lease is unchanged, the winners sit on its GPUs
            assert won and row.end == end and ends == {end}
            assert set(taken.values_list("gpu_id", flat=True)) <= gpu_ids
            assert sum(result.gpus for result in won) <= 8
        assert taken.count() == sum(result.gpus for result in won)
        assert AuditEntry.objects.filter(action="lease.extend", object_id=str(lease.public_id)).count() == (
            1 if isinstance(extended, Lease) else 0
        )
        assert overlapping_allocations() == 0
