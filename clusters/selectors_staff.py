"""Reads for the staff pages about the fleet and every organization's leases (staff see everything)."""

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from accounts.models import AuditEntry
from accounts.selectors import get_by_public_id_or_404
from clusters.choices import LIVE_LEASE_STATES, GpuHealth
from clusters.models import Allocation, HealthEvent, Lease, Node, Region


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
    nodes = Node.objects.select_related("cluster__region").order_by(
        "cluster__region__code", "cluster__name", "hostname"
    )
    if region:
        nodes = nodes.filter(cluster__region__code=region)
    if state:
        nodes = nodes.filter(state=state)
    nodes = nodes.annotate(
        gpus_total=Count("gpus"),
        gpus_healthy=Count("gpus", filter=Q(gpus__health=GpuHealth.HEALTHY)),
        gpus_need_cleanup=Count("gpus", filter=Q(gpus__needs_cleanup=True)),
    ).only("public_id", "hostname", "pool", "state", "state_reason", "cluster__name", "cluster__region")
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


def leases_for_staff(
    *, state: str = "", region: str = "", organization: str = "", kind: str = ""
) -> QuerySet[Lease]:
    """Every organization's leases, newest first, filtered by state, region code, organization slug, kind."""
    leases = Lease.objects.select_related("organization", "region", "booked_by")
    filters = {
        "state": state,
        "region__code": region,
        "organization__slug": organization,
        "kind": kind,
    }
    leases = leases.filter(**{column: value for column, value in filters.items() if value})
    return leases.order_by("-created_at", "-pk")


def hostnames_of(leases: Iterable[Lease]) -> dict[int, list[str]]:
    """The nodes each lease holds (or held), one query for a page of leases."""
    rows = (
        Allocation.objects.filter(lease_id__in=[lease.pk for lease in leases])
        .values_list("lease_id", "node__hostname")
        .distinct()
        .order_by("lease_id", "node__hostname")
    )
    hosts: dict[int, list[str]] = defaultdict(list)
    for lease_id, hostname in rows:
        hosts[lease_id].append(hostname)
    return hosts
