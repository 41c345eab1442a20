"""Leases with their allocations, made directly (the booking services live on another branch).

Usage is derived from allocations only, so a lease made here bills exactly like a booked one.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.db.backends.postgresql.psycopg_any import DateTimeTZRange

from accounts.models import Organization, User
from clusters.choices import LeaseKind, LeaseState
from clusters.models import Allocation, HealthEvent, Lease, Node, Region
from tests.factories import NodeFactory, RegionFactory, UserFactory


def make_lease(
    *,
    organization: Organization,
    start: datetime,
    end: datetime | None,
    gpus: int = 1,
    price: Decimal | str = "2.0000",
    node: Node | None = None,
    region: Region | None = None,
    state: str = LeaseState.ACTIVE,
    booked_by: User | None = None,
    kind: str = LeaseKind.ON_DEMAND,
    booked_at: datetime | None = None,
) -> Lease:
    """A lease holding `gpus` GPUs of one node over [start, end) (open-ended when end is None).

    On-demand by default (one released at `end` when it has one): usage is billed by the hour.
    A reserved lease made here has no commitment; booking charges that (billing/services/commitments.py).
    """
    region = region or (node.cluster.region if node else RegionFactory.create())
    node = node or NodeFactory.create(cluster__region=region)
    live = state not in (LeaseState.CANCELLED, LeaseState.FAILED)
    lease = Lease.objects.create(
        organization=organization,
        booked_by=booked_by or UserFactory.create(),
        region=region,
        gpus=gpus,
        kind=kind,
        start=start,
        end=end,
        state=state,
        price_per_gpu_hour=Decimal(price),
        started_at=start if state in (LeaseState.ACTIVE, LeaseState.ENDED) else None,
        created_at=booked_at or start - timedelta(hours=1),
    )
    gpus_free = list(node.gpus.order_by("index")[:gpus])
    Allocation.objects.bulk_create(
        Allocation(lease=lease, gpu=gpu, node=node, period=DateTimeTZRange(start, end, "[)"), is_live=live)
        for gpu in gpus_free
    )
    return lease


def release(lease: Lease, at: datetime) -> None:
    """What lease_release does to the rows: the end and every allocation's period close at `at`."""
    Lease.objects.filter(pk=lease.pk).update(end=at)
    for allocation in lease.allocations.all():
        allocation.period = DateTimeTZRange(allocation.period.lower, at, "[)")
        allocation.save(update_fields=["period"])


def unhealthy(node: Node, start: datetime, end: datetime | None, kind: str = "xid") -> HealthEvent:
    """A health event on `node` over [start, end)."""
    return HealthEvent.objects.create(node=node, kind=kind, started_at=start, ended_at=end, detail="test")
