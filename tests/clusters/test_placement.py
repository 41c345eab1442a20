"""Placement: best fit on one node, whole nodes in one cluster, pools, and only healthy capacity."""

from datetime import timedelta

import pytest
from django.utils import timezone

from clusters.choices import GpuHealth, LeaseKind, NodeState, Pool
from clusters.models import GPU, Lease, Node
from clusters.services.booking import lease_book, lease_cancel
from clusters.services.refusals import NoCapacity
from tests.clusters.helpers import later

pytestmark = pytest.mark.usefixtures("big_quota")


def book(user, fleet, gpus, *, start=None, end=None, kind=LeaseKind.RESERVED):
    start = start or later()
    end = end or start + timedelta(hours=2)
    return lease_book(
        user=user,
        organization=user.memberships.first().organization,
        region=fleet.region,
        gpus=gpus,
        kind=kind,
        start=None if kind == LeaseKind.ON_DEMAND else start,
        end=None if kind == LeaseKind.ON_DEMAND else end,
    )


def placed(lease: Lease) -> dict[str, list[int]]:
    """{hostname: [gpu indices]} read back from the lease's allocations."""
    result: dict[str, list[int]] = {}
    for host, index in lease.allocations.order_by("node__hostname", "gpu__index").values_list(
        "node__hostname", "gpu__index"
    ):
        result.setdefault(host, []).append(index)
    return result


def test_it_fills_a_partly_used_node_before_starting_another(alice, fleet) -> None:
    first = book(alice, fleet, 2)
    second = book(alice, fleet, 4)
    third = book(alice, fleet, 2)
    fourth = book(alice, fleet, 1)
    assert placed(first) == {"tx1-c01-n001": [0, 1]}
    assert placed(second) == {"tx1-c01-n001": [2, 3, 4, 5]}
    assert placed(third) == {"tx1-c01-n001": [6, 7]}
    assert placed(fourth) == {"tx1-c01-n002": [0]}


def test_it_picks_the_node_with_the_fewest_free_gpus_that_still_fit(alice, fleet) -> None:
    book(alice, fleet, 2)  # n001: 6 free
    whole = book(alice, fleet, 8)  # a whole node in the cluster already in use
    book(alice, fleet, 4)  # n001: 2 free
    four = book(alice, fleet, 4)  # does not fit n001: the next node of the same cluster
    two = book(alice, fleet, 2)  # n001 is the tightest fit
    assert placed(whole) == {"tx1-c01-n002": list(range(8))}
    assert placed(four) == {"tx1-c01-n003": [0, 1, 2, 3]}
    assert placed(two) == {"tx1-c01-n001": [6, 7]}


def test_windows_that_do_not_overlap_share_the_same_gpus(alice, fleet) -> None:
    first = book(alice, fleet, 8, start=later(0), end=later(2))
    second = book(alice, fleet, 8, start=later(2), end=later(4))
    assert placed(first) == placed(second) == {"tx1-c01-n001": list(range(8))}


def test_a_large_lease_takes_whole_nodes_inside_one_cluster(alice, fleet) -> None:
    book(alice, fleet, 1)  # cluster 1 now has 3 whole nodes, cluster 2 has 4
    lease = book(alice, fleet, 24)
    assert placed(lease) == {f"tx1-c01-n00{i}": list(range(8)) for i in (2, 3, 4)}
    bigger = book(alice, fleet, 32)
    assert set(placed(bigger)) == {f"tx1-c02-n00{i}" for i in (1, 2, 3, 4)}
    assert lease.allocations.count() == 24 and bigger.allocations.count() == 32


def test_a_large_lease_never_spans_two_clusters(alice, fleet) -> None:
    book(alice, fleet, 1)
    book(alice, fleet, 8, start=later(), end=later(2))  # c01 has 2 whole nodes left, c02 has 4
    with pytest.raises(NoCapacity) as refused:
        book(alice, fleet, 40)
    assert refused.value.max_gpus_available == 32
    assert Lease.objects.filter(gpus=40).count() == 0


def test_early_stage_organizations_place_in_their_pool_first_then_general(
    alice, charlie, fleet, globex
) -> None:
    Node.objects.filter(cluster__name="tx1-c02").update(pool=Pool.EARLY_STAGE)
    globex.early_stage_approved = True
    globex.save(update_fields=["early_stage_approved"])
    early = book(charlie, fleet, 32)
    assert all(host.startswith("tx1-c02") for host in placed(early))
    spill = book(charlie, fleet, 8)
    assert all(host.startswith("tx1-c01") for host in placed(spill))


def test_everyone_else_never_places_in_the_early_stage_pool(alice, fleet) -> None:
    Node.objects.filter(cluster__name="tx1-c02").update(pool=Pool.EARLY_STAGE)
    book(alice, fleet, 32)
    with pytest.raises(NoCapacity) as refused:
        book(alice, fleet, 1)
    assert refused.value.max_gpus_available == 0
    assert not Lease.objects.filter(allocations__node__cluster__name="tx1-c02").exists()


def test_it_skips_nodes_that_are_not_available_and_gpus_that_are_not_healthy(alice, fleet) -> None:
    Node.objects.filter(hostname="tx1-c01-n001").update(state=NodeState.UNHEALTHY)
    Node.objects.filter(hostname="tx1-c01-n002").update(state=NodeState.DRAINING)
    GPU.objects.filter(node__hostname="tx1-c01-n003", index=0).update(health=GpuHealth.FAILED)
    four = book(alice, fleet, 4)
    eight = book(alice, fleet, 8)
    assert placed(four) == {"tx1-c01-n003": [1, 2, 3, 4]}
    assert placed(eight) == {"tx1-c01-n004": list(range(8))}


def test_gpus_awaiting_cleanup_are_only_placed_in_windows_that_start_later(alice, fleet) -> None:
    GPU.objects.filter(node__hostname="tx1-c01-n001", index__in=[0, 1]).update(needs_cleanup=True)
    soon = book(alice, fleet, 1, kind=LeaseKind.ON_DEMAND)
    later_one = book(alice, fleet, 1, start=later(days=1))
    assert placed(soon) == {"tx1-c01-n001": [2]}
    assert placed(later_one) == {"tx1-c01-n001": [0]}


def test_placement_is_deterministic_for_the_same_state(alice, fleet) -> None:
    book(alice, fleet, 2)
    first = book(alice, fleet, 4)
    where = placed(first)
    lease_cancel(user=alice, lease=first)
    again = book(alice, fleet, 4)
    assert placed(again) == where
    assert not first.allocations.filter(is_live=True).exists()


def test_on_demand_holds_its_gpus_from_now_without_an_end(alice, fleet) -> None:
    before = timezone.now()
    lease = book(alice, fleet, 8, kind=LeaseKind.ON_DEMAND)
    lease.refresh_from_db()
    assert lease.end is None and before <= lease.start <= timezone.now()
    period = lease.allocations.first().period
    assert period.upper is None and period.lower == lease.start
    assert placed(lease) == {"tx1-c01-n001": list(range(8))}
    month_later = book(alice, fleet, 8, start=later(days=30))
    assert placed(month_later) == {"tx1-c01-n002": list(range(8))}


def test_a_reserved_lease_goes_onto_gpus_that_carry_other_bookings_and_leaves_unbooked_ones_to_on_demand(
    alice, fleet
) -> None:
    book(alice, fleet, 8, start=later(days=7))  # n001
    book(alice, fleet, 8, start=later(days=7))  # n002
    first_on_demand = book(alice, fleet, 4, kind=LeaseKind.ON_DEMAND)
    assert placed(first_on_demand) == {"tx1-c01-n003": [0, 1, 2, 3]}
    # Best fit alone would take n003's four free GPUs, which nothing else will ever book.
    monday = book(alice, fleet, 2, start=later(days=2))
    assert placed(monday) == {"tx1-c01-n001": [0, 1]}
    second_on_demand = book(alice, fleet, 4, kind=LeaseKind.ON_DEMAND)
    assert placed(second_on_demand) == {"tx1-c01-n003": [4, 5, 6, 7]}


def test_on_a_partly_booked_node_a_reserved_lease_takes_the_booked_gpus_first(alice, fleet) -> None:
    low = book(alice, fleet, 4, start=later(days=7))  # n001 GPUs 0-3
    book(alice, fleet, 4, start=later(days=7))  # n001 GPUs 4-7
    lease_cancel(user=alice, lease=low)
    monday = book(alice, fleet, 2, start=later(days=2))
    assert placed(monday) == {"tx1-c01-n001": [4, 5]}


def test_a_large_reserved_lease_takes_whole_nodes_that_carry_other_bookings(alice, fleet) -> None:
    first = book(alice, fleet, 16, start=later(days=7))  # n001, n002
    book(alice, fleet, 16, start=later(days=7))  # n003, n004: cluster c01 has the fewest whole nodes left
    lease_cancel(user=alice, lease=first)
    large = book(alice, fleet, 16, start=later(days=2))
    assert placed(large) == {"tx1-c01-n003": list(range(8)), "tx1-c01-n004": list(range(8))}
    on_demand = book(alice, fleet, 16, kind=LeaseKind.ON_DEMAND)
    assert placed(on_demand) == {"tx1-c01-n001": list(range(8)), "tx1-c01-n002": list(range(8))}
