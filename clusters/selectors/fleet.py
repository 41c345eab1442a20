"""Fleet reads: regions, the staff fleet grid, node pages and node lists."""

from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import AuditEntry
from clusters.choices import LIVE_LEASE_STATES, GpuHealth, LeaseState, NodeState
from clusters.models import Allocation, HealthEvent, Lease, Node, Region
from core.db import get_by_public_id_or_404


def region_or_none(code: str) -> Region | None:
    """The region with this code."""
    return Region.objects.filter(code=code).first()


def nodes_for_staff(*, state: str | None = None, region: str | None = None) -> QuerySet[Node]:
    """Every node with its GPU counts and open health events, for the staff fleet view."""
    nodes = _with_gpu_counts(_nodes(region=region, state=state).order_by("hostname"))
    open_events = (
        HealthEvent.objects.filter(ended_at__isnull=True).select_related("gpu").order_by("started_at")
    )
    return nodes.prefetch_related(Prefetch("health_events", queryset=open_events, to_attr="open_events"))


def _nodes(*, region: str | None, state: str | None) -> QuerySet[Node]:
    nodes = Node.objects.select_related("cluster__region")
    if region:
        nodes = nodes.filter(cluster__region__code=region)
    if state:
        nodes = nodes.filter(state=state)
    return nodes


def _with_gpu_counts(nodes: QuerySet[Node]) -> QuerySet[Node]:
    """Each node's GPUs: in all, healthy, and waiting for cleanup (one GROUP BY, no query per node)."""
    return nodes.annotate(
        gpus_total=Count("gpus"),
        gpus_healthy=Count("gpus", filter=Q(gpus__health=GpuHealth.HEALTHY)),
        gpus_need_cleanup=Count("gpus", filter=Q(gpus__needs_cleanup=True)),
    )


class NodeUse:
    """How much of an available node is leased right now, as the grid shows it."""

    FREE = "free"
    PARTLY = "partly"
    BUSY = "busy"
    LABELS = {FREE: "free", PARTLY: "partly leased", BUSY: "fully leased"}


def _with_gpus_leased(nodes: QuerySet[Node]) -> QuerySet[Node]:
    """Each node's GPUs held by a lease at this instant (a subquery, so the GPU counts stay exact)."""
    held = (
        Allocation.objects.filter(node=OuterRef("pk"), is_live=True, period__contains=timezone.now())
        .order_by()
        .values("node")
        .annotate(n=Count("*"))
        .values("n")
    )
    return nodes.annotate(gpus_leased=Coalesce(Subquery(held, output_field=IntegerField()), 0))


def node_use(node: Node) -> str:
    """Free, partly or fully leased now (for a node annotated by `fleet_grid`)."""
    leased = getattr(node, "gpus_leased", 0)
    if leased == 0:
        return NodeUse.FREE
    return NodeUse.BUSY if leased >= getattr(node, "gpus_total", 8) else NodeUse.PARTLY


@dataclass
class ClusterGrid:
    """One cluster's nodes in hostname order."""

    name: str
    nodes: list[Node] = field(default_factory=list)


@dataclass
class RegionGrid:
    """One region's clusters and how many of its nodes are in each state."""

    region: Region
    clusters: list[ClusterGrid] = field(default_factory=list)
    states: Counter[str] = field(default_factory=Counter)
    uses: Counter[str] = field(default_factory=Counter)

    @property
    def use_counts(self) -> list[tuple[str, int]]:
        """(use, available nodes) pairs: fully leased, partly leased, free."""
        return [(NodeUse.LABELS[use], self.uses[use]) for use in (NodeUse.BUSY, NodeUse.PARTLY, NodeUse.FREE)]

    @property
    def state_counts(self) -> list[tuple[str, int]]:
        """(state, nodes) pairs, most common first (templates cannot iterate a Counter's items)."""
        return self.states.most_common()


def fleet_grid(*, region: str = "", state: str = "") -> list[RegionGrid]:
    """Every region, cluster and node with its GPU health counts, in one query."""
    nodes = _nodes(region=region, state=state).order_by("cluster__region__code", "cluster__name", "hostname")
    nodes = _with_gpus_leased(_with_gpu_counts(nodes)).only(
        "public_id", "hostname", "pool", "state", "state_reason", "cluster__name", "cluster__region"
    )
    grids: dict[int, RegionGrid] = {}
    for node in nodes:
        grid = grids.setdefault(node.cluster.region_id, RegionGrid(node.cluster.region))
        if not grid.clusters or grid.clusters[-1].name != node.cluster.name:
            grid.clusters.append(ClusterGrid(node.cluster.name))
        node.use = node_use(node)  # type: ignore[attr-defined]
        grid.clusters[-1].nodes.append(node)
        grid.states[node.state] += 1
        if node.state == NodeState.AVAILABLE:
            grid.uses[node.use] += 1  # type: ignore[attr-defined]
    return list(grids.values())


def open_health_events(limit: int = 200) -> QuerySet[HealthEvent]:
    """Health events still open, newest first, with their node and GPU."""
    events = HealthEvent.objects.filter(ended_at__isnull=True).select_related("node", "gpu")
    return events.order_by("-started_at", "-pk")[:limit]


def node_page_data(node: Node) -> dict[str, object]:
    """A node's GPUs with their latest readings, the leases on it now, its health events and audit trail."""
    now = timezone.now()
    leases = (
        Lease.objects.filter(
            Q(allocations__period__contains=now) | Q(allocations__period__startswith__gt=now),
            allocations__node=node,
            allocations__is_live=True,
            state__in=LIVE_LEASE_STATES,
        )
        .select_related("organization")
        .annotate(gpus_here=Count("allocations"))
        .order_by("start")
    )
    leases_here = list(leases)
    leased_now = [lease for lease in leases_here if lease.state == LeaseState.ACTIVE]
    return {
        "gpus": list(node.gpus.order_by("index")),
        "leases": leases_here,
        "leased_now": leased_now,
        "gpus_leased_now": sum(lease.gpus_here for lease in leased_now),
        "events": list(node.health_events.select_related("gpu").order_by("-started_at")[:20]),
        "audit": list(
            AuditEntry.objects.filter(object_type="Node", object_id=str(node.public_id))
            .select_related("actor")
            .order_by("-at")[:10]
        ),
        "now": now,
    }


def node_for_staff(public_id: object) -> Node:
    """A node by its public id with its cluster and region; a malformed or unknown id is a 404."""
    return get_by_public_id_or_404(Node.objects.select_related("cluster__region"), public_id)
