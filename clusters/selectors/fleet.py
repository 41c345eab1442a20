"""Fleet reads: regions, the staff fleet grid, node pages and node lists."""

from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from accounts.models import AuditEntry
from clusters.choices import LIVE_LEASE_STATES, GpuHealth
from clusters.models import HealthEvent, Lease, Node, Region
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

    @property
    def state_counts(self) -> list[tuple[str, int]]:
        """(state, nodes) pairs, most common first (templates cannot iterate a Counter's items)."""
        return self.states.most_common()


def fleet_grid(*, region: str = "", state: str = "") -> list[RegionGrid]:
    """Every region, cluster and node with its GPU health counts, in one query."""
    nodes = _nodes(region=region, state=state).order_by("cluster__region__code", "cluster__name", "hostname")
    nodes = _with_gpu_counts(nodes).only(
        "public_id", "hostname", "pool", "state", "state_reason", "cluster__name", "cluster__region"
    )
    grids: dict[int, RegionGrid] = {}
    for node in nodes:
        grid = grids.setdefault(node.cluster.region_id, RegionGrid(node.cluster.region))
        if not grid.clusters or grid.clusters[-1].name != node.cluster.name:
            grid.clusters.append(ClusterGrid(node.cluster.name))
        grid.clusters[-1].nodes.append(node)
        grid.states[node.state] += 1
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
    return {
        "gpus": list(node.gpus.order_by("index")),
        "leases": list(leases),
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
