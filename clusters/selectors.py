"""Reads of the fleet, its availability, and an organization's leases."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from accounts.models import Organization, SshKey
from accounts.selectors import get_by_public_id_or_404
from clusters.capacity import (
    FREE_NODES_CTE,
    Window,
    capacity_params,
    is_valid_size,
    largest_placeable,
    pools_for,
)
from clusters.choices import GPUS_PER_NODE, LIVE_LEASE_STATES, GpuHealth, NodeState, Pool
from clusters.models import Allocation, Lease, Region


def regions_with_capacity() -> QuerySet[Region]:
    """Every region with its GPUs in total, healthy (placeable), and in each pool, in one query."""
    placeable = Q(clusters__nodes__gpus__health=GpuHealth.HEALTHY, clusters__nodes__state=NodeState.AVAILABLE)
    return Region.objects.annotate(
        gpus_total=Count("clusters__nodes__gpus"),
        gpus_healthy=Count("clusters__nodes__gpus", filter=placeable),
        gpus_general=Count("clusters__nodes__gpus", filter=Q(clusters__nodes__pool=Pool.GENERAL)),
        gpus_early_stage=Count("clusters__nodes__gpus", filter=Q(clusters__nodes__pool=Pool.EARLY_STAGE)),
    ).order_by("code")


# --- Booking: availability, quota use, the capacity timeline and the organization's leases.


@dataclass(frozen=True)
class Availability:
    """How much of a region is free for a whole window, for one organization's pools."""

    free_gpus: int
    max_gpus_available: int
    can_place: bool


AVAILABILITY_SQL = f"""
WITH {FREE_NODES_CTE}
SELECT coalesce(sum(free), 0), coalesce(max(free), 0), coalesce(max(cluster_whole), 0) FROM ranked
"""


def availability_for(
    *, region: Region, window: Window, gpus: int, organization: Organization
) -> Availability:
    """Free GPUs for the whole window, the largest lease that fits, and whether `gpus` fits."""
    params = capacity_params(region_id=region.pk, window=window, pools=pools_for(organization))
    with connection.cursor() as cursor:
        cursor.execute(AVAILABILITY_SQL, params)
        free_gpus, max_node_free, max_whole = cursor.fetchone()
    largest = largest_placeable(max_node_free=max_node_free, max_whole_nodes=max_whole)
    fits_on = max_node_free if gpus <= GPUS_PER_NODE else max_whole * GPUS_PER_NODE
    can_place = is_valid_size(gpus) and fits_on >= gpus
    return Availability(free_gpus=int(free_gpus), max_gpus_available=largest, can_place=can_place)


def gpus_held_at_peak(
    *, organization: Organization, window: Window, exclude_lease_id: int | None = None
) -> int:
    """The most GPUs the organization's live leases hold at any instant of the window."""
    leases = Lease.objects.filter(organization=organization, state__in=LIVE_LEASE_STATES)
    if window.end is not None:
        leases = leases.filter(start__lt=window.end)
    leases = leases.filter(Q(end__isnull=True) | Q(end__gt=window.start)).exclude(pk=exclude_lease_id)
    events: list[tuple[datetime, int]] = []
    for start, end, gpus in leases.values_list("start", "end", "gpus"):
        events.append((max(start, window.start), gpus))
        if end is not None:
            events.append((end, -gpus))
    held = peak = 0
    # At one instant, ends ([) upper bounds) count before starts.
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        held += delta
        peak = max(peak, held)
    return peak


@dataclass(frozen=True)
class TimelineHour:
    """Free GPUs of a region for one hour of the booking calendar."""

    start: datetime
    free_gpus: int


TIMELINE_SQL = """
WITH eligible AS (
    SELECT g.id
    FROM clusters_gpu g
    JOIN clusters_node n ON n.id = g.node_id
    JOIN clusters_cluster c ON c.id = n.cluster_id
    WHERE c.region_id = %(region)s AND n.state = 'available' AND n.pool = ANY(%(pools)s::text[])
      AND g.health = 'healthy'
),
spans AS (
    SELECT a.gpu_id,
           greatest(0, floor(extract(epoch FROM lower(a.period) - %(t0)s) / 3600))::int AS lo,
           least(%(hours)s - 1,
                 ceil(extract(epoch FROM coalesce(upper(a.period), %(t1)s) - %(t0)s) / 3600)::int - 1) AS hi
    FROM clusters_allocation a
    JOIN eligible e ON e.id = a.gpu_id
    WHERE a.is_live AND a.period && tstzrange(%(t0)s, %(t1)s, '[)')
),
marked AS (
    SELECT gpu_id, lo, hi,
           CASE WHEN lo <= max(hi) OVER (PARTITION BY gpu_id ORDER BY lo, hi
                                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                THEN 0 ELSE 1 END AS opens
    FROM spans
),
islands AS (
    SELECT gpu_id, min(lo) AS lo, max(hi) AS hi
    FROM (SELECT *, sum(opens) OVER (PARTITION BY gpu_id ORDER BY lo, hi) AS island FROM marked) m
    GROUP BY gpu_id, island
),
deltas AS (
    SELECT lo AS hour, 1 AS delta FROM islands
    UNION ALL
    SELECT hi + 1, -1 FROM islands
)
SELECT h, (SELECT count(*) FROM eligible) - coalesce(sum(sum(d.delta)) OVER (ORDER BY h), 0)
FROM generate_series(0, %(hours)s - 1) AS h
LEFT JOIN deltas d ON d.hour = h
GROUP BY h
ORDER BY h
"""


def capacity_timeline(*, region: Region, organization: Organization) -> list[TimelineHour]:
    """Free GPUs (healthy, on available nodes of the organization's pools) per hour from this hour on.

    A GPU counts as busy for an hour when any live allocation touches that hour; overlapping
    allocations of one GPU are merged first ("islands") so no GPU is counted twice.
    """
    hours = settings.BOOKING_TIMELINE_DAYS * 24
    t0 = timezone.now().replace(minute=0, second=0, microsecond=0)
    params = {
        "region": region.pk,
        "pools": pools_for(organization),
        "t0": t0,
        "t1": t0 + timedelta(hours=hours),
        "hours": hours,
    }
    with connection.cursor() as cursor:
        cursor.execute(TIMELINE_SQL, params)
        return [TimelineHour(start=t0 + timedelta(hours=h), free_gpus=int(free)) for h, free in cursor]


def leases_of(organization: Organization, *, state: str | None = None) -> QuerySet[Lease]:
    """The organization's leases, newest first, with what the API shows of them."""
    leases = Lease.objects.filter(organization=organization).select_related("region")
    if state:
        leases = leases.filter(state=state)
    allocations = Allocation.objects.select_related("node", "gpu").order_by("node__hostname", "gpu__index")
    return leases.prefetch_related(
        Prefetch("allocations", queryset=allocations),
        Prefetch("ssh_keys", queryset=SshKey.objects.only("public_id")),
    ).order_by("-created_at", "-pk")


def lease_of_organization_or_404(organization: Organization, public_id: object) -> Lease:
    """One of the organization's leases; another organization's id (or a malformed one) is a 404."""
    return get_by_public_id_or_404(leases_of(organization), public_id)


def region_or_none(code: str) -> Region | None:
    """The region with this code."""
    return Region.objects.filter(code=code).first()
