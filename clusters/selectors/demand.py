"""Demand and capacity for staff: GPUs committed per day, pool utilization, unmet demand, the
queue, each region's early-stage share, and the fleet figures /metrics exports."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Sum
from django.utils import timezone

from clusters.choices import LeaseRequestState, NodeState, Pool
from clusters.models import DemandRecord, Lease, LeaseRequest, Node, Region
from clusters.selectors.capacity import AVAILABILITY_SQL, Window, capacity_params

COMMITTED_DAYS = 90
DEMAND_DAYS = 30

# Each live allocation's share of every UTC day of [d0, d0 + days) it overlaps, summed per region,
# pool and day: GPU-days, i.e. the GPUs committed on average that day. Each allocation is expanded
# into the days it touches (generate_series over its day indices), not joined with every day.
# An on-demand lease with no end counts as running to the horizon.
COMMITTED_SQL = """
WITH spans AS (
    SELECT a.region_id, n.pool,
           greatest(lower(a.period), %(d0)s) AS lo,
           least(coalesce(upper(a.period), 'infinity'), %(d1)s) AS hi
    FROM clusters_allocation a
    JOIN clusters_node n ON n.id = a.node_id
    WHERE a.is_live AND a.period && tstzrange(%(d0)s, %(d1)s, '[)')
)
SELECT s.region_id, s.pool, k,
       sum(extract(epoch FROM least(s.hi, %(d0)s + k * interval '1 day' + interval '1 day')
                            - greatest(s.lo, %(d0)s + k * interval '1 day'))) / 86400.0
FROM spans s,
     generate_series(floor(extract(epoch FROM s.lo - %(d0)s) / 86400)::int,
                     ceil(extract(epoch FROM s.hi - %(d0)s) / 86400)::int - 1) AS k
GROUP BY s.region_id, s.pool, k
"""


@dataclass
class PoolDays:
    """One region's pool: its GPUs in service and the GPUs committed each day."""

    region: Region
    pool: str
    gpus: int
    committed: list[tuple[date, float]] = field(default_factory=list)

    @property
    def peak(self) -> float:
        return max((value for _, value in self.committed), default=0.0)


def committed_per_day(days: int = COMMITTED_DAYS, now: datetime | None = None) -> list[PoolDays]:
    """GPUs committed per UTC day for the next `days`, per region and pool, with each pool's size."""
    now = now or timezone.now()
    d0 = now.replace(hour=0, minute=0, second=0, microsecond=0)
    d1 = d0 + timedelta(days=days)
    rows: dict[tuple[int, str], dict[int, float]] = defaultdict(dict)
    with connection.cursor() as cursor:
        cursor.execute(COMMITTED_SQL, {"d0": d0, "d1": d1})
        for region_id, pool, k, gpu_days in cursor.fetchall():
            rows[(region_id, pool)][k] = float(gpu_days)
    sizes = _pool_sizes()
    out = []
    for region in Region.objects.order_by("code"):
        for pool in Pool.values:
            by_day = rows.get((region.pk, pool), {})
            committed = [((d0 + timedelta(days=k)).date(), round(by_day.get(k, 0.0), 1)) for k in range(days)]
            out.append(PoolDays(region, pool, sizes.get((region.pk, pool), 0), committed))
    return out


def _pool_sizes() -> dict[tuple[int, str], int]:
    """GPUs on nodes in service, per (region id, pool)."""
    nodes = Node.objects.filter(state=NodeState.AVAILABLE).values("cluster__region_id", "pool")
    return {
        (row["cluster__region_id"], row["pool"]): row["gpu_count"]
        for row in nodes.annotate(gpu_count=Count("gpus")).order_by()
    }


@dataclass(frozen=True)
class PoolUse:
    """How much of one region's pool is in use now."""

    region: Region
    pool: str
    gpus: int
    in_use: int

    @property
    def percent(self) -> float:
        return round(100 * self.in_use / self.gpus, 1) if self.gpus else 0.0


IN_USE_SQL = """
SELECT a.region_id, n.pool, count(*)
FROM clusters_allocation a JOIN clusters_node n ON n.id = a.node_id
WHERE a.is_live AND a.period @> %(now)s::timestamptz
GROUP BY a.region_id, n.pool
"""


def pool_utilization(now: datetime | None = None) -> list[PoolUse]:
    """Each region's early-stage and general pools: GPUs in service and in use now."""
    with connection.cursor() as cursor:
        cursor.execute(IN_USE_SQL, {"now": now or timezone.now()})
        in_use = {(region_id, pool): count for region_id, pool, count in cursor.fetchall()}
    sizes = _pool_sizes()
    return [
        PoolUse(region, pool, sizes.get((region.pk, pool), 0), in_use.get((region.pk, pool), 0))
        for region in Region.objects.order_by("code")
        for pool in Pool.values
    ]


@dataclass
class UnmetDay:
    """GPU-hours of demand turned away on one UTC day, per region code ('any' for any region)."""

    day: date
    gpu_hours: dict[str, Decimal]


def unmet_demand(days: int = DEMAND_DAYS, now: datetime | None = None) -> tuple[list[str], list[UnmetDay]]:
    """The region codes shown and, per day of the last `days` (newest first), the GPU-hours refused
    or expired in the queue (DemandRecord) plus, today, those queued now."""
    now = now or timezone.now()
    since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    regions = list(Region.objects.order_by("code").values_list("code", flat=True)) + ["any"]
    per_day: dict[date, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    records = DemandRecord.objects.filter(at__gte=since).values_list("at", "region__code", "gpu_hours")
    for at, code, gpu_hours in records:
        per_day[at.date()][code or "any"] += gpu_hours
    for code, gpu_hours in queued_gpu_hours().items():
        per_day[now.date()][code] += gpu_hours
    days_shown = [(now - timedelta(days=i)).date() for i in range(days)]
    return regions, [UnmetDay(day, dict(per_day.get(day, {}))) for day in days_shown]


def queued_gpu_hours() -> dict[str, Decimal]:
    """GPU-hours asked for by queued requests, per region code ('any'); on-demand counts one hour."""
    hours: dict[str, Decimal] = defaultdict(Decimal)
    queued = LeaseRequest.objects.filter(state=LeaseRequestState.QUEUED)
    for code, gpus, length in queued.values_list("region__code", "gpus", "hours"):
        hours[code or "any"] += Decimal(gpus * (length or 1))
    return dict(hours)


@dataclass(frozen=True)
class QueueDepth:
    """Requests queued for one region (or any), and their GPUs."""

    region: str
    requests: int
    gpus: int


def queue_depth() -> list[QueueDepth]:
    """Queued requests and GPUs per region code ('any' for requests that take any region)."""
    rows = (
        LeaseRequest.objects.filter(state=LeaseRequestState.QUEUED)
        .values("region__code")
        .annotate(requests=Count("id"), gpus=Sum("gpus"))
        .order_by("region__code")
    )
    return [QueueDepth(row["region__code"] or "any", row["requests"], row["gpus"] or 0) for row in rows]


# --- Figures for /metrics


@dataclass(frozen=True)
class FleetCapacityFigures:
    """What /metrics exports of capacity and demand (clusters/views/metrics.py)."""

    free_gpus: dict[tuple[str, str], int]  # (region, pool) -> GPUs an on-demand lease could take now
    queued: list[QueueDepth]
    refused: dict[str, int]  # reason -> bookings refused (and requests expired) so far
    leases: dict[str, int]  # state -> leases


def fleet_capacity_figures() -> FleetCapacityFigures:
    """Free GPUs by region and pool, the queue, refusals by reason, leases by state."""
    now = timezone.now()
    free: dict[tuple[str, str], int] = {}
    with connection.cursor() as cursor:
        for region in Region.objects.order_by("code"):
            for pool in Pool.values:
                params = capacity_params(region_id=region.pk, window=Window(now, None), pools=[pool])
                cursor.execute(AVAILABILITY_SQL, params)
                free[(region.code, pool)] = int(cursor.fetchone()[0])
    refused = dict(DemandRecord.objects.values_list("reason").annotate(n=Count("id")).order_by())
    leases = dict(Lease.objects.values_list("state").annotate(n=Count("id")).order_by())
    return FleetCapacityFigures(free, queue_depth(), refused, leases)
