"""Property-based: on random fleet states, placement picks exactly what best fit, written out plainly
in Python, picks; and the region kept on each allocation (which placement's index scan relies
on) is always the node's, whoever writes the row."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg2.extras import DateTimeTZRange

from accounts.models import Organization, User
from clusters.choices import GPUS_PER_NODE, GpuHealth, LeaseKind, NodeState, Pool
from clusters.models import GPU, Allocation, Cluster, Node
from clusters.selectors.capacity import Window, availability_for
from clusters.services.booking import lease_book
from clusters.services.refusals import NoCapacity
from tests.clusters.helpers import RegionFleet, build_fleet, later
from tests.factories import ClusterFactory, LeaseFactory, NodeFactory, RegionFactory

pytestmark = pytest.mark.usefixtures("big_quota")

NODES = 8  # the test fleet: tx1-c01-n001..n004 and tx1-c02-n001..n004


@dataclass(frozen=True)
class Busy:
    """An existing allocation: GPU `gpu` of node `node`, from `start` hours for `hours` hours."""

    node: int
    gpu: int
    start: int
    hours: int


@dataclass
class State:
    busy: list[Busy]
    failed_gpus: set[tuple[int, int]]
    drained_nodes: set[int]
    early_stage_nodes: set[int]
    approved: bool
    start: int
    hours: int
    gpus: int


def _no_overlaps(busy: list[Busy]) -> list[Busy]:
    kept: list[Busy] = []
    for b in busy:
        if all(
            (k.node, k.gpu) != (b.node, b.gpu) or k.start + k.hours <= b.start or b.start + b.hours <= k.start
            for k in kept
        ):
            kept.append(b)
    return kept


states = st.builds(
    State,
    busy=st.lists(
        st.builds(
            Busy,
            node=st.integers(0, NODES - 1),
            gpu=st.integers(0, GPUS_PER_NODE - 1),
            start=st.integers(-3, 8),
            hours=st.integers(1, 4),
        ),
        max_size=60,
    ).map(_no_overlaps),
    failed_gpus=st.sets(st.tuples(st.integers(0, NODES - 1), st.integers(0, GPUS_PER_NODE - 1)), max_size=4),
    drained_nodes=st.sets(st.integers(0, NODES - 1), max_size=2),
    early_stage_nodes=st.sets(st.integers(0, NODES - 1), max_size=5),
    approved=st.booleans(),
    start=st.integers(0, 4),
    hours=st.integers(1, 4),
    gpus=st.sampled_from([1, 1, 2, 4, 8, 16, 24]),
)


def hours_from(base: datetime, hours: int) -> datetime:
    return base + timedelta(hours=hours)


def expected_placement(state: State, hostnames: list[str]) -> dict[str, list[int]] | None:
    """Best fit, written independently of the SQL: {hostname: GPU indices}, or None if nothing fits."""
    lo, hi = state.start, state.start + state.hours
    busy = {(b.node, b.gpu) for b in state.busy if b.start < hi and lo < b.start + b.hours}
    busy |= state.failed_gpus
    pools = [Pool.EARLY_STAGE, Pool.GENERAL] if state.approved else [Pool.GENERAL]
    nodes: list[dict[str, Any]] = []
    for n, host in enumerate(hostnames):
        pool = Pool.EARLY_STAGE if n in state.early_stage_nodes else Pool.GENERAL
        if n in state.drained_nodes or pool not in pools:
            continue
        free = [g for g in range(GPUS_PER_NODE) if (n, g) not in busy]
        nodes.append(
            {"host": host, "cluster": host[:7], "pool": pool, "rank": pools.index(pool), "free": free}
        )
    for node in nodes:
        node["whole"] = sum(
            1
            for other in nodes
            if (other["cluster"], other["pool"]) == (node["cluster"], node["pool"])
            and len(other["free"]) == GPUS_PER_NODE
        )
    if state.gpus <= GPUS_PER_NODE:
        fits = [n for n in nodes if len(n["free"]) >= state.gpus]
        if not fits:
            return None
        best = min(fits, key=lambda n: (n["rank"], len(n["free"]), n["whole"], n["host"]))
        return {best["host"]: best["free"][: state.gpus]}
    return _expected_whole_nodes(nodes, state.gpus // GPUS_PER_NODE)


def _expected_whole_nodes(nodes: list[dict], count: int) -> dict[str, list[int]] | None:
    groups: dict[tuple[str, str, int], list[str]] = {}
    for n in nodes:
        if len(n["free"]) == GPUS_PER_NODE:
            groups.setdefault((n["cluster"], n["pool"], n["rank"]), []).append(n["host"])
    fitting = [(rank, len(hosts), cluster, sorted(hosts)) for (cluster, _, rank), hosts in groups.items()]
    fitting = [f for f in fitting if f[1] >= count]
    if not fitting:
        return None
    hosts = min(fitting)[3][:count]
    return {host: list(range(GPUS_PER_NODE)) for host in hosts}


def arrange(fleet: RegionFleet, state: State, organization: Organization, base: datetime) -> None:
    holder = LeaseFactory.create(region=fleet.region, organization=organization)
    nodes = fleet.nodes
    gpus = {(n, g.index): g for n, node in enumerate(nodes) for g in node.gpus.all()}
    Allocation.objects.bulk_create(
        Allocation(
            lease=holder,
            gpu=gpus[(b.node, b.gpu)],
            node=nodes[b.node],
            period=DateTimeTZRange(hours_from(base, b.start), hours_from(base, b.start + b.hours), "[)"),
        )
        for b in state.busy
    )
    for n, g in state.failed_gpus:
        GPU.objects.filter(pk=gpus[(n, g)].pk).update(health=GpuHealth.FAILED)
    Node.objects.filter(pk__in=[nodes[n].pk for n in state.drained_nodes]).update(state=NodeState.DRAINING)
    Node.objects.filter(pk__in=[nodes[n].pk for n in state.early_stage_nodes]).update(pool=Pool.EARLY_STAGE)
    Organization.objects.filter(pk=organization.pk).update(early_stage_approved=state.approved)
    organization.refresh_from_db()


def placed_by_booking(
    fleet: RegionFleet, state: State, user: User, base: datetime
) -> dict[str, list[int]] | None:
    organization = user.memberships.get().organization
    arrange(fleet, state, organization, base)
    try:
        lease = lease_book(
            user=user,
            organization=organization,
            region=fleet.region,
            gpus=state.gpus,
            kind=LeaseKind.RESERVED,
            start=hours_from(base, state.start),
            end=hours_from(base, state.start + state.hours),
        )
    except NoCapacity:
        return None
    result: dict[str, list[int]] = {}
    for host, index in lease.allocations.order_by("node__hostname", "gpu__index").values_list(
        "node__hostname", "gpu__index"
    ):
        result.setdefault(host, []).append(index)
    return result


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(state=states)
def test_placement_picks_what_plain_best_fit_picks_on_any_state(alice, fleet, state) -> None:
    base = later(0)
    hostnames = [node.hostname for node in fleet.nodes]
    with transaction.atomic():
        got = placed_by_booking(fleet, state, alice, base)
        transaction.set_rollback(True)
    assert got == expected_placement(state, hostnames)


def test_the_region_of_an_allocation_is_its_nodes_whoever_writes_it(fleet) -> None:
    lease = LeaseFactory.create(region=fleet.region)
    gpu = fleet.nodes[0].gpus.get(index=0)
    Allocation.objects.create(
        lease=lease, gpu=gpu, node=fleet.nodes[0], period=DateTimeTZRange(later(0), later(1), "[)")
    )
    assert Allocation.objects.get().region_id == fleet.region.pk


def test_moving_a_node_or_a_cluster_moves_its_allocations_region(fleet) -> None:
    lease = LeaseFactory.create(region=fleet.region)
    node = fleet.nodes[0]
    Allocation.objects.create(
        lease=lease, gpu=node.gpus.get(index=0), node=node, period=DateTimeTZRange(later(0), later(1), "[)")
    )
    elsewhere = ClusterFactory.create(region=RegionFactory.create(code="us-va-9"))
    Node.objects.filter(pk=node.pk).update(cluster=elsewhere)
    assert Allocation.objects.get().region_id == elsewhere.region_id
    farther = RegionFactory.create(code="us-wa-9")
    Cluster.objects.filter(pk=elsewhere.pk).update(region=farther)
    assert Allocation.objects.get().region_id == farther.pk


def test_another_regions_allocations_do_not_count_against_this_region(alice, acme) -> None:
    here = build_fleet(clusters=1, nodes_per_cluster=1)
    there = ClusterFactory.create(region=RegionFactory.create(code="us-va-2"), name="va2-c01")
    far_node = NodeFactory.create(cluster=there, hostname="va2-c01-n001")
    window = (later(0), later(2))
    holder = LeaseFactory.create(region=there.region)
    Allocation.objects.bulk_create(
        Allocation(lease=holder, gpu=gpu, node=far_node, period=DateTimeTZRange(*window, "[)"))
        for gpu in far_node.gpus.all()
    )
    free_here = availability_for(region=here.region, window=Window(*window), gpus=8, organization=acme)
    free_there = availability_for(region=there.region, window=Window(*window), gpus=1, organization=acme)
    assert (free_here.free_gpus, free_here.can_place) == (8, True)
    assert (free_there.free_gpus, free_there.can_place) == (0, False)
