"""Property-based: on random fleet states, placement picks exactly what packing then best fit,
written out plainly in Python, picks; a reserved booking leaves on-demand capacity as it was
whenever it can be placed on GPUs that already carry bookings; and what the database keeps about
each allocation and GPU (its region, when the GPU's last booking ends) is what the allocations
say, whoever writes them."""

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg2.extras import DateTimeTZRange

from accounts.models import Organization, User
from clusters.choices import GPUS_PER_NODE, GpuHealth, LeaseKind, NodeState, Pool
from clusters.models import GPU, Allocation, Cluster, GpuBookedUntil, Lease, Node, Region
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
    on_demand: bool = False


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
# Reserved windows (`states`, which other tests reuse) and now and then an on-demand lease instead.
states_of_either_kind = st.builds(
    lambda state, on_demand: replace(state, on_demand=on_demand),
    states,
    st.sampled_from([False, False, True]),
)


def hours_from(base: datetime, hours: int) -> datetime:
    return base + timedelta(hours=hours)


def expected_placement(state: State, hostnames: list[str]) -> dict[str, list[int]] | None:
    """Packing, then best fit, written independently of the SQL: {hostname: GPU indices}, or None.

    Every busy interval of the test is in the future, so a GPU with one carries a booking from now
    on; the others are unbooked, what on-demand can take. On-demand is busy wherever a booking is.
    """
    nodes = _nodes(state, hostnames)
    if state.gpus <= GPUS_PER_NODE:
        fits = [n for n in nodes if len(n["free"]) >= state.gpus]
        if not fits:
            return None
        best = min(fits, key=lambda n: _one_node_key(n, state.gpus))
        booked_first = sorted(best["free"], key=lambda g: (g in best["unbooked"], g))
        return {best["host"]: sorted(booked_first[: state.gpus])}
    return _expected_whole_nodes(nodes, state.gpus // GPUS_PER_NODE)


def _one_node_key(node: dict[str, Any], gpus: int) -> tuple:
    unbooked_taken = max(0, gpus - (len(node["free"]) - len(node["unbooked"])))
    return (node["rank"], unbooked_taken, len(node["free"]), node["whole"], node["host"])


def _nodes(state: State, hostnames: list[str]) -> list[dict[str, Any]]:
    """The placeable nodes of the organization's pools, with their free and unbooked GPUs."""
    lo, hi = state.start, state.start + state.hours
    booked = {(b.node, b.gpu) for b in state.busy}
    if state.on_demand:
        busy = set(booked)
    else:
        busy = {(b.node, b.gpu) for b in state.busy if b.start < hi and lo < b.start + b.hours}
    busy |= state.failed_gpus
    pools = [Pool.EARLY_STAGE, Pool.GENERAL] if state.approved else [Pool.GENERAL]
    nodes: list[dict[str, Any]] = []
    for n, host in enumerate(hostnames):
        pool = Pool.EARLY_STAGE if n in state.early_stage_nodes else Pool.GENERAL
        if n in state.drained_nodes or pool not in pools:
            continue
        free = [g for g in range(GPUS_PER_NODE) if (n, g) not in busy]
        unbooked = {g for g in free if (n, g) not in booked}
        nodes.append(
            {
                "host": host,
                "cluster": host[:7],
                "pool": pool,
                "rank": pools.index(pool),
                "free": free,
                "unbooked": unbooked,
            }
        )
    for node in nodes:
        node["whole"] = sum(
            1
            for other in nodes
            if (other["cluster"], other["pool"]) == (node["cluster"], node["pool"])
            and len(other["free"]) == GPUS_PER_NODE
        )
    return nodes


def _expected_whole_nodes(nodes: list[dict], count: int) -> dict[str, list[int]] | None:
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for n in nodes:
        if len(n["free"]) == GPUS_PER_NODE:
            groups.setdefault((n["cluster"], n["pool"], n["rank"]), []).append(n)
    fitting = []
    for (cluster, _, rank), members in groups.items():
        if len(members) < count:
            continue
        chosen = sorted(members, key=lambda n: (len(n["unbooked"]), n["host"]))[:count]
        unbooked_taken = sum(len(n["unbooked"]) for n in chosen)
        fitting.append((rank, unbooked_taken, len(members), cluster, [n["host"] for n in chosen]))
    if not fitting:
        return None
    return {host: list(range(GPUS_PER_NODE)) for host in min(fitting)[4]}


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


def book(state: State, user: User, region: Region, base: datetime) -> Lease | None:
    """Book what the state asks for, or None when it does not fit."""
    try:
        return lease_book(
            user=user,
            organization=user.memberships.get().organization,
            region=region,
            gpus=state.gpus,
            kind=LeaseKind.ON_DEMAND if state.on_demand else LeaseKind.RESERVED,
            start=None if state.on_demand else hours_from(base, state.start),
            end=None if state.on_demand else hours_from(base, state.start + state.hours),
        )
    except NoCapacity:
        return None


def placed_by_booking(
    fleet: RegionFleet, state: State, user: User, base: datetime
) -> dict[str, list[int]] | None:
    arrange(fleet, state, user.memberships.get().organization, base)
    lease = book(state, user, fleet.region, base)
    if lease is None:
        return None
    result: dict[str, list[int]] = {}
    for host, index in lease.allocations.order_by("node__hostname", "gpu__index").values_list(
        "node__hostname", "gpu__index"
    ):
        result.setdefault(host, []).append(index)
    return result


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(state=states_of_either_kind)
def test_placement_picks_what_plain_packing_and_best_fit_pick_on_any_state(alice, fleet, state) -> None:
    base = later(0)
    hostnames = [node.hostname for node in fleet.nodes]
    with transaction.atomic():
        got = placed_by_booking(fleet, state, alice, base)
        transaction.set_rollback(True)
    assert got == expected_placement(state, hostnames)


def packed_placement_exists(state: State, hostnames: list[str]) -> bool:
    """Whether the reserved lease fits, in the pool placement would use, on booked GPUs only."""
    nodes = _nodes(state, hostnames)
    if state.gpus <= GPUS_PER_NODE:
        fits = [n for n in nodes if len(n["free"]) >= state.gpus]
        best = min((n["rank"] for n in fits), default=None)
        return any(n["rank"] == best and len(n["free"]) - len(n["unbooked"]) >= state.gpus for n in fits)
    count = state.gpus // GPUS_PER_NODE
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for n in nodes:
        if len(n["free"]) == GPUS_PER_NODE:
            groups.setdefault((n["cluster"], n["pool"], n["rank"]), []).append(n)
    fitting = {key: members for key, members in groups.items() if len(members) >= count}
    best = min((rank for (_, _, rank) in fitting), default=None)
    return any(
        rank == best and sum(1 for n in members if not n["unbooked"]) >= count
        for (_, _, rank), members in fitting.items()
    )


# What on-demand can take, read from the allocations themselves: GPUs with no live booking from now on.
UNBOOKED_SQL = """
SELECT n.hostname, g.index FROM clusters_gpu g JOIN clusters_node n ON n.id = g.node_id
WHERE g.health = 'healthy' AND n.state = 'available' AND NOT EXISTS (
    SELECT 1 FROM clusters_allocation a
    WHERE a.gpu_id = g.id AND a.is_live AND a.period && tstzrange(now(), NULL)
)
"""


def unbooked_gpus() -> set[tuple[str, int]]:
    with connection.cursor() as cursor:
        cursor.execute(UNBOOKED_SQL)
        return set(cursor.fetchall())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(state=states)
def test_a_reserved_booking_leaves_on_demand_capacity_alone_when_an_equally_good_packed_placement_exists(
    alice, fleet, state
) -> None:
    """Equally good: in the pool placement uses anyway (the organization's first that fits)."""
    base = later(0)
    packed = packed_placement_exists(state, [node.hostname for node in fleet.nodes])
    with transaction.atomic():
        arrange(fleet, state, alice.memberships.get().organization, base)
        before = unbooked_gpus()
        lease = book(state, alice, fleet.region, base)
        after = unbooked_gpus()
        transaction.set_rollback(True)
    if packed:
        assert lease is not None
        assert after == before


operations = st.lists(
    st.tuples(
        st.sampled_from(["book", "book_open", "cancel", "shorten", "stretch", "delete"]),
        st.integers(0, 3),  # which GPU
        st.integers(-30, 30),  # start, hours from now
        st.integers(1, 20),  # hours
    ),
    max_size=20,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_each_gpus_booked_until_is_the_latest_end_of_its_live_allocations_whoever_writes_them(
    fleet, ops
) -> None:
    node = fleet.nodes[0]
    gpus = list(node.gpus.order_by("index"))
    now = later(0, days=0)
    with transaction.atomic():
        holder = LeaseFactory.create(region=fleet.region)
        for op, g, start, hours in ops:
            _apply(op, gpus[g], holder, node, now + timedelta(hours=start), timedelta(hours=hours))
        assert _booked_until() == _latest_ends()
        transaction.set_rollback(True)


def _apply(op: str, gpu: GPU, holder: Lease, node: Node, start: datetime, length: timedelta) -> None:
    allocations = Allocation.objects.filter(gpu=gpu, is_live=True).order_by("period__startswith")
    try:
        with transaction.atomic():
            if op in ("book", "book_open"):
                end = None if op == "book_open" else start + length
                Allocation.objects.create(
                    lease=holder, gpu=gpu, node=node, period=DateTimeTZRange(start, end, "[)")
                )
            elif (first := allocations.first()) is not None:
                _change(op, first, length)
    except IntegrityError:
        pass  # the exclusion constraint refused an overlap: nothing changed


def _change(op: str, allocation: Allocation, length: timedelta) -> None:
    lower = allocation.period.lower
    if op == "cancel":
        Allocation.objects.filter(pk=allocation.pk).update(is_live=False)
    elif op == "delete":
        allocation.delete()
    else:  # a release or an extension, as lease_release and lease_extend write it
        end = lower + (length / 4 if op == "shorten" else length * 4)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE clusters_allocation SET period = tstzrange(lower(period), %s, '[)') WHERE id = %s",
                [end, allocation.pk],
            )


def _booked_until() -> dict[int, datetime]:
    return dict(GpuBookedUntil.objects.values_list("gpu_id", "booked_until"))


def _latest_ends() -> dict[int, datetime]:
    """What booked_until should say, recomputed from the allocations in Python."""
    ends: dict[int, datetime] = {
        gpu_id: datetime.min.replace(tzinfo=UTC) for gpu_id in GPU.objects.values_list("id", flat=True)
    }
    for gpu_id, period in Allocation.objects.filter(is_live=True).values_list("gpu_id", "period"):
        end = datetime.max.replace(tzinfo=UTC) if period.upper is None else period.upper
        ends[gpu_id] = max(ends[gpu_id], end)
    return ends


def test_the_region_of_an_allocation_is_its_nodes_whoever_writes_it(fleet) -> None:
    lease = LeaseFactory.create(region=fleet.region)
    gpu = fleet.nodes[0].gpus.get(index=0)
    Allocation.objects.create(
        lease=lease, gpu=gpu, node=fleet.nodes[0], period=DateTimeTZRange(later(0), later(1), "[)")
    )
    assert Allocation.objects.get().region_id == fleet.region.pk


def test_moving_a_node_or_a_cluster_moves_its_allocations_and_gpus_region(fleet) -> None:
    lease = LeaseFactory.create(region=fleet.region)
    node = fleet.nodes[0]
    Allocation.objects.create(
        lease=lease, gpu=node.gpus.get(index=0), node=node, period=DateTimeTZRange(later(0), later(1), "[)")
    )
    elsewhere = ClusterFactory.create(region=RegionFactory.create(code="us-va-9"))
    Node.objects.filter(pk=node.pk).update(cluster=elsewhere)
    assert Allocation.objects.get().region_id == elsewhere.region_id
    assert set(GpuBookedUntil.objects.filter(node=node).values_list("region_id", flat=True)) == {
        elsewhere.region_id
    }
    farther = RegionFactory.create(code="us-wa-9")
    Cluster.objects.filter(pk=elsewhere.pk).update(region=farther)
    assert Allocation.objects.get().region_id == farther.pk
    assert set(GpuBookedUntil.objects.filter(node=node).values_list("region_id", flat=True)) == {farther.pk}


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
