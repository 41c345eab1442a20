"""Helpers of the clusters tests.

- A fleet to book (`build_fleet` makes a `RegionFleet`: one region, clusters of nodes, the price
  book), whole-hour instants (`later`), API bodies (`reserved`), and a check that no GPU is booked
  twice (`overlapping_allocations`).
- Leases booked through booking's service (`Booking`) or, where a test needs a lease booking would
  refuse (one that started in the past), made directly (`lease_on`, `active_lease`, `make_active`,
  `fill` to hold whole nodes until an instant), with telemetry samples (`add_samples`).
- A simulated fleet (`serve_fleet` makes a `Fleet`): the real node agent (nodeagent) served over HTTP on
  loopback, the boundary where the GPUs are faked. RUNTIME_TEST_PORTS ("18300-18400" by default) is the
  range of loopback ports it may use.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db import connection
from django.utils import timezone
from psycopg2.extras import DateTimeTZRange

from accounts.models import Organization, SshKey, User
from clusters.choices import LeaseKind, LeaseState
from clusters.models import GPU, Allocation, GpuSample, Lease, Node, PriceBookEntry, Region
from clusters.services.agent_tokens import encrypt_agent_token
from clusters.services.booking import lease_book
from clusters.services.partitions import telemetry_partition_ensure
from nodeagent.backends.simulated import SimulatedFleet
from nodeagent.protocol import account_for_lease
from nodeagent.simulator import start_in_thread
from tests.factories import ClusterFactory, NodeFactory, RegionFactory
from tests.live import free_port

AGENT_TOKEN = "test-agent-token"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c alice@laptop"


def lease_on(
    gpus: list[GPU],
    *,
    organization: Organization,
    booked_by: User,
    start: datetime | None = None,
    end: datetime | None = None,
    state: str = LeaseState.SCHEDULED,
    kind: str = LeaseKind.RESERVED,
    keys: list[str] | None = None,
    **fields: Any,
) -> Lease:
    """A lease over [start, end) holding exactly these GPUs, as booking would leave it."""
    start = start or timezone.now()
    end = end if end is not None or kind == LeaseKind.ON_DEMAND else start + timedelta(hours=1)
    lease = Lease.objects.create(
        organization=organization,
        booked_by=booked_by,
        region=gpus[0].node.cluster.region,
        gpus=len(gpus),
        kind=kind,
        start=start,
        end=end,
        state=state,
        price_per_gpu_hour="1.9900",
        ssh_public_keys=keys if keys is not None else [SSH_KEY],
        started_at=start if state == LeaseState.ACTIVE else None,
        **fields,
    )
    Allocation.objects.bulk_create(
        Allocation(lease=lease, gpu=gpu, node=gpu.node, period=DateTimeTZRange(start, end, "[)"))
        for gpu in gpus
    )
    return lease


@dataclass
class Booking:
    """Books as Alice (owner of Acme) with her SSH key, through `lease_book`."""

    organization: Organization
    user: User
    key: SshKey

    def reserved(self, node: Node, gpus: int, *, start: datetime, end: datetime) -> Lease:
        return lease_book(
            user=self.user,
            organization=self.organization,
            region=node.cluster.region,
            gpus=gpus,
            kind=LeaseKind.RESERVED,
            start=start,
            end=end,
            ssh_keys=[self.key],
        )

    def on_demand(self, node: Node, gpus: int) -> Lease:
        return lease_book(
            user=self.user,
            organization=self.organization,
            region=node.cluster.region,
            gpus=gpus,
            kind=LeaseKind.ON_DEMAND,
            ssh_keys=[self.key],
        )


def fill(nodes: list[Node], *, organization, booked_by, until, indices=None, start=None) -> None:
    """Hold every GPU (or those with `indices`) of `nodes` from `start` (now) until `until`."""
    start = start or timezone.now().replace(microsecond=0) - timedelta(hours=1)
    for node in nodes:
        lease_on(
            gpus_of(node, indices),
            organization=organization,
            booked_by=booked_by,
            start=start,
            end=until,
            state=LeaseState.ACTIVE,
        )


def whole_second(after: timedelta) -> datetime:
    """The first whole second at least `after` from now (booking's step, shortened in tests)."""
    moment = timezone.now() + after
    return moment.replace(microsecond=0) + timedelta(seconds=1 if moment.microsecond else 0)


def nodes_of(lease: Lease) -> set[str]:
    """Hostnames of the nodes a lease was placed on."""
    return set(lease.allocations.values_list("node__hostname", flat=True))


def gpus_of(node: Node, indices: list[int] | None = None) -> list[GPU]:
    """The node's GPUs (all, or those with these indices), in index order."""
    gpus = node.gpus.order_by("index").select_related("node__cluster__region")
    return list(gpus if indices is None else gpus.filter(index__in=indices))


@dataclass
class Fleet:
    """Simulated nodes served over HTTP, and their rows in the database."""

    sim: Any
    base_url: str
    lease_root: Path
    nodes: list[Node]

    def keys_file(self, node: Node, lease: Lease) -> Path:
        return (
            self.lease_root / node.hostname / account_for_lease(str(lease.public_id)) / ".ssh/authorized_keys"
        )


def make_nodes(count: int, base_url: str, *, prefix: str = "sim", region: str = "us-tx-1") -> list[Node]:
    """`count` nodes with eight GPUs each in a new cluster of `region`, whose agents are under `base_url`."""
    cluster = ClusterFactory.create(region=RegionFactory.create(code=region, name=region))
    token = encrypt_agent_token(AGENT_TOKEN)
    nodes = []
    for n in range(count):
        hostname = f"{prefix}-{cluster.name}-n{n:03d}"
        nodes.append(
            NodeFactory.create(
                cluster=cluster,
                hostname=hostname,
                agent_url=f"{base_url}/nodes/{hostname}/",
                agent_token_encrypted=token,
            )
        )
    return nodes


def serve_fleet(
    count: int, lease_root: Path, *, prefix: str = "sim", region: str = "us-tx-1"
) -> tuple[Fleet, Callable[[], None]]:
    """`count` nodes in the database (in `region`) whose agents are one simulated fleet on a free
    loopback port, and the function that stops serving it."""
    port = free_port("RUNTIME_TEST_PORTS", "18300-18400")
    nodes = make_nodes(count, f"http://127.0.0.1:{port}", prefix=prefix, region=region)
    sim = SimulatedFleet([node.hostname for node in nodes], lease_root)
    base_url, stop = start_in_thread(sim, token=AGENT_TOKEN, port=port)
    return Fleet(sim, base_url, lease_root, nodes), stop


@dataclass
class RegionFleet:
    """A fleet to book: with the defaults, `nodes[0..3]` in cluster tx1-c01 and `nodes[4..7]` in tx1-c02."""

    region: Region
    nodes: list[Node]


def build_fleet(clusters: int = 2, nodes_per_cluster: int = 4) -> RegionFleet:
    """One region (us-tx-1) of `clusters` × `nodes_per_cluster` nodes of 8 GPUs, and its prices."""
    region = RegionFactory.create()
    nodes = []
    for c in range(1, clusters + 1):
        cluster = ClusterFactory.create(region=region, name=f"tx1-c{c:02d}")
        nodes += [
            NodeFactory.create(cluster=cluster, hostname=f"tx1-c{c:02d}-n{n:03d}")
            for n in range(1, nodes_per_cluster + 1)
        ]
    since = datetime(2020, 1, 1, tzinfo=UTC)
    PriceBookEntry.objects.create(
        kind=LeaseKind.RESERVED, price_per_gpu_hour=Decimal("1.99"), effective_from=since
    )
    PriceBookEntry.objects.create(
        kind=LeaseKind.ON_DEMAND, price_per_gpu_hour=Decimal("2.49"), effective_from=since
    )
    return RegionFleet(region=region, nodes=nodes)


def later(hours: float = 0, *, days: int = 1) -> datetime:
    """A whole-minute instant `days` + `hours` from the start of the next hour."""
    base = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return base + timedelta(days=days, hours=hours)


def reserved(gpus: int = 8, start=None, hours: float = 2, **extra):
    """The API body booking a reserved lease in us-tx-1 (from `later()` unless `start` is given)."""
    start = start or later()
    body = {"region": "us-tx-1", "gpus": gpus, "kind": "reserved", "start": start.isoformat()}
    body["end"] = (start + timedelta(hours=hours)).isoformat()
    return {**body, **extra}


OVERLAPS_SQL = """
SELECT count(*) FROM clusters_allocation a
JOIN clusters_allocation b ON a.gpu_id = b.gpu_id AND a.id < b.id AND a.period && b.period
WHERE a.is_live AND b.is_live
"""


def overlapping_allocations() -> int:
    """Pairs of live allocations that hold one GPU at once (read in SQL, past any application rule)."""
    with connection.cursor() as cursor:
        cursor.execute(OVERLAPS_SQL)
        return cursor.fetchone()[0]


def make_active(lease_id: str, *, started_hours_ago: float = 1) -> None:
    """What the run-time sweeper does at start, with the window moved into the past."""
    lease = Lease.objects.get(public_id=lease_id)
    shift = lease.start - (timezone.now() - timedelta(hours=started_hours_ago))
    for allocation in lease.allocations.all():
        upper = allocation.period.upper - shift if allocation.period.upper else None
        allocation.period = (allocation.period.lower - shift, upper)
        allocation.save(update_fields=["period"])
    Lease.objects.filter(pk=lease.pk).update(
        state=LeaseState.ACTIVE, start=lease.start - shift, end=lease.end - shift if lease.end else None
    )


def tx_node(fleet: list[Node]) -> Node:
    """The first Texas node of a seeded fleet."""
    return next(node for node in fleet if node.hostname.startswith("tx1"))


def active_lease(fleet: list[Node], *, organization, booked_by, hours_ago: float = 2, **fields) -> Lease:
    """An on-demand lease on a Texas node's eight GPUs, running since `hours_ago`."""
    start = timezone.now().replace(microsecond=0) - timedelta(hours=hours_ago)
    return lease_on(
        gpus_of(tx_node(fleet)),
        organization=organization,
        booked_by=booked_by,
        start=start,
        end=None,
        kind=LeaseKind.ON_DEMAND,
        state=LeaseState.ACTIVE,
        **fields,
    )


def add_samples(lease: Lease, *, since: datetime, every: timedelta, utilization: int) -> int:
    """Readings of each of the lease's GPUs from `since` until now."""
    gpus = GPU.objects.filter(allocations__lease=lease)
    rows, at, now = [], since, timezone.now()
    while at <= now:
        rows += [
            GpuSample(
                gpu=gpu,
                at=at,
                utilization_pct=utilization,
                memory_used_bytes=40 * 2**30,
                temperature_c=61,
                power_draw_w=350.0,
            )
            for gpu in gpus
        ]
        at += every
    day = since.astimezone(UTC).date()
    while day <= now.astimezone(UTC).date():
        telemetry_partition_ensure(day=day)
        day += timedelta(days=1)
    GpuSample.objects.bulk_create(rows)
    return len(rows)
