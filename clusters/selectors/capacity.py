"""Capacity reads: free GPUs for a window, the booking calendar, quota left."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from accounts.models import Organization
from clusters.choices import (
    GPUS_PER_NODE,
    LIVE_LEASE_STATES,
    SINGLE_NODE_SIZES,
    GpuHealth,
    LeaseKind,
    NodeState,
    Pool,
)
from clusters.models import Lease, Region
from clusters.selectors.lease_requests import gpus_queued


@dataclass(frozen=True)
class Window:
    """A lease's period: [start, end), or open-ended when `end` is None (on-demand)."""

    start: datetime
    end: datetime | None

    def overlaps_soon(self, now: datetime | None = None) -> bool:
        """Whether it starts within the horizon in which GPUs awaiting cleanup are not placed."""
        now = now or timezone.now()
        return self.start < now + settings.BOOKING_CLEANUP_HORIZON

    @property
    def hours(self) -> float | None:
        return None if self.end is None else (self.end - self.start) / timedelta(hours=1)


def pools_for(organization: Organization) -> list[str]:
    """The pools an organization places in, in order of preference."""
    if organization.early_stage_approved:
        return [Pool.EARLY_STAGE.value, Pool.GENERAL.value]
    return [Pool.GENERAL.value]


# What is free is written once, in the database (clusters/sql/booking.sql): clusters_free_nodes
# answers each available node of the region in the pools, with its free GPUs for the window, its
# pool's rank and its cluster's wholly free nodes. Placement, availability and offerings read it.
FREE_NODES_SQL = (
    "clusters_free_nodes(%(region)s::bigint, %(start)s::timestamptz, %(end)s::timestamptz, "
    "%(pools)s::text[], %(soon)s::boolean)"
)


def capacity_params(*, region_id: int, window: Window, pools: list[str]) -> dict[str, Any]:
    """The parameters of FREE_NODES_SQL."""
    return {
        "region": region_id,
        "start": window.start,
        "end": window.end,
        "pools": pools,
        "soon": window.overlaps_soon(),
    }


def largest_placeable(*, max_node_free: int, max_whole_nodes: int) -> int:
    """The largest valid lease size that fits, given the freest node and the most whole nodes in a cluster."""
    if max_whole_nodes >= 2:
        return max_whole_nodes * GPUS_PER_NODE
    fitting = [size for size in SINGLE_NODE_SIZES if size <= max_node_free]
    return max(fitting, default=0)


def is_valid_size(gpus: int) -> bool:
    """1, 2, 4 or 8 GPUs on one node; above 8, whole nodes (a multiple of 8)."""
    return gpus in SINGLE_NODE_SIZES or (gpus > GPUS_PER_NODE and gpus % GPUS_PER_NODE == 0)


def regions_with_capacity() -> QuerySet[Region]:
    """Every region with its GPUs in total, healthy (placeable), and in each pool, in one query."""
    placeable = Q(clusters__nodes__gpus__health=GpuHealth.HEALTHY, clusters__nodes__state=NodeState.AVAILABLE)
    return Region.objects.annotate(
        gpus_total=Count("clusters__nodes__gpus"),
        gpus_healthy=Count("clusters__nodes__gpus", filter=placeable),
        gpus_general=Count("clusters__nodes__gpus", filter=Q(clusters__nodes__pool=Pool.GENERAL)),
        gpus_early_stage=Count("clusters__nodes__gpus", filter=Q(clusters__nodes__pool=Pool.EARLY_STAGE)),
    ).order_by("code")


@dataclass(frozen=True)
class Availability:
    """How much of a region is free for a whole window, for one organization's pools."""

    free_gpus: int
    max_gpus_available: int
    can_place: bool


AVAILABILITY_SQL = f"""
SELECT coalesce(sum(free), 0), coalesce(max(free), 0), coalesce(max(cluster_whole), 0) FROM {FREE_NODES_SQL}
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


def gpus_free_now(*, pools: list[str]) -> dict[int, int]:
    """GPUs of each region (by id) that an on-demand lease in `pools` could take right now.

    The count placement would see: healthy GPUs on available nodes, not held now or later by a
    live allocation, not awaiting cleanup; one range scan per region (there are a handful).
    """
    window = Window(start=timezone.now(), end=None)
    free: dict[int, int] = {}
    with connection.cursor() as cursor:
        for region_id in Region.objects.order_by("pk").values_list("pk", flat=True):
            cursor.execute(AVAILABILITY_SQL, capacity_params(region_id=region_id, window=window, pools=pools))
            free[region_id] = int(cursor.fetchone()[0])
    return free


def visitor_pools(organization: Organization | None) -> list[str]:
    """The pools a visitor books in: the organization's, or the general pool without one."""
    return pools_for(organization) if organization is not None else [Pool.GENERAL.value]


def gpus_held_at_peak(
    *, organization: Organization, window: Window, exclude_lease_id: int | None = None
) -> int:
    """The most GPUs the organization's live leases hold at any instant of the window.

    Written once, in the database (clusters_gpus_held_at_peak), where booking checks the quota.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT clusters_gpus_held_at_peak(%s::bigint, %s::timestamptz, %s::timestamptz, %s::bigint)",
            [organization.pk, window.start, window.end, exclude_lease_id],
        )
        return int(cursor.fetchone()[0])


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
    params: dict[str, Any] = {
        "region": region.pk,
        "pools": pools_for(organization),
        "t0": t0,
        "t1": t0 + timedelta(hours=hours),
        "hours": hours,
    }
    with connection.cursor() as cursor:
        cursor.execute(TIMELINE_SQL, params)
        return [TimelineHour(start=t0 + timedelta(hours=h), free_gpus=int(free)) for h, free in cursor]


def quota_left(*, organization: Organization, window: Window) -> int:
    """GPUs the organization may still add at the busiest instant of the window (its queued
    requests' GPUs count against its quota too)."""
    held = gpus_held_at_peak(organization=organization, window=window)
    return max(organization.gpu_quota - held - gpus_queued(organization), 0)


@dataclass(frozen=True)
class RegionTimeline:
    """A region's free GPUs per hour over the booking calendar."""

    region: Region
    hours: list[TimelineHour]

    def daily_minimum(self, zone: tzinfo) -> list[tuple[date, int]]:
        """The fewest free GPUs of each day in `zone` (what a lease lasting all day could get)."""
        days: dict[date, int] = {}
        for hour in self.hours:
            day = hour.start.astimezone(zone).date()
            days[day] = min(days.get(day, hour.free_gpus), hour.free_gpus)
        return list(days.items())


def booking_calendar(organization: Organization) -> list[RegionTimeline]:
    """Every region's free GPUs (in the organization's pools) per hour for the next 14 days."""
    regions = Region.objects.order_by("code")
    return [RegionTimeline(r, capacity_timeline(region=r, organization=organization)) for r in regions]


# Per lease, the start of the first other live booking on any of its GPUs at or after its end:
# how far the same GPUs stay free (extending keeps the GPUs, clusters.services.booking.lease_extend).
NEXT_BOOKING_SQL = """
SELECT l.id, (
    SELECT min(lower(o.period))
    FROM clusters_allocation a
    JOIN clusters_allocation o ON o.gpu_id = a.gpu_id AND o.is_live AND o.lease_id <> a.lease_id
    WHERE a.lease_id = l.id AND a.is_live AND lower(o.period) >= l."end"
)
FROM clusters_lease l
WHERE l.id = ANY(%(ids)s::bigint[])
"""


def extendable_until(leases: Sequence[Lease], now: datetime | None = None) -> dict[int, datetime | None]:
    """How far each live reserved lease could be extended right now (by id); None for any other.

    The earliest of: the next booking on its GPUs, its longest allowed length, and the first
    instant its organization's other leases and queued requests would put it over its quota.
    A lease that cannot be extended at all reads its own end.
    """
    now = now or timezone.now()
    extendable = [
        lease
        for lease in leases
        if lease.kind == LeaseKind.RESERVED
        and lease.state in LIVE_LEASE_STATES
        and lease.end
        and lease.end > now
    ]
    answer: dict[int, datetime | None] = {lease.pk: None for lease in leases}
    if not extendable:
        return answer
    with connection.cursor() as cursor:
        cursor.execute(NEXT_BOOKING_SQL, {"ids": [lease.pk for lease in extendable]})
        next_booking = dict(cursor.fetchall())
    # A lease just booked carries its organization (read under the booking's lock): no read again.
    organizations = {
        lease.organization_id: lease.organization
        for lease in extendable
        if Lease.organization.is_cached(lease)
    }
    missing = {lease.organization_id for lease in extendable} - organizations.keys()
    organizations |= Organization.objects.in_bulk(missing) if missing else {}
    queued = {pk: _queued(organization) for pk, organization in organizations.items()}
    for lease in extendable:
        assert lease.end is not None
        until = lease.start + settings.BOOKING_MAX_DURATION
        if next_booking.get(lease.pk) is not None:
            until = min(until, next_booking[lease.pk])
        organization = organizations[lease.organization_id]
        within = _within_quota_until(lease, until, organization, queued[organization.pk])
        answer[lease.pk] = max(lease.end, within)
    return answer


def _queued(organization: Organization) -> int:
    # Booking's lock read the GPUs its queued requests ask for with the row (LOCK_ORGANIZATION_SQL).
    read = getattr(organization, "gpus_queued", None)
    return int(read) if read is not None else gpus_queued(organization)


def _within_quota_until(lease: Lease, until: datetime, organization: Organization, queued: int) -> datetime:
    """The first instant in [end, until) at which the organization would be over its quota with
    this lease running on, or `until`."""
    assert lease.end is not None
    others = (
        Lease.objects.filter(organization=organization, state__in=LIVE_LEASE_STATES, start__lt=until)
        .filter(Q(end__isnull=True) | Q(end__gt=lease.end))
        .exclude(pk=lease.pk)
        .values_list("start", "end", "gpus")
    )
    events: list[tuple[datetime, int]] = []
    for start, end, gpus in others:
        events.append((max(start, lease.end), gpus))
        if end is not None and end < until:
            events.append((end, -gpus))
    held = lease.gpus + queued
    # At one instant ends count before starts: periods are [) ranges.
    for at, delta in sorted(events):
        held += delta
        if held > organization.gpu_quota:
            return at
    return until


# Per GPU of the region that placement could give an on-demand lease now (healthy, not waiting
# for cleanup, on an available node of the pools, held by nothing now): when its next booking
# starts (NULL: never). An on-demand lease "until" runs on such GPUs up to that instant.
NEXT_START_SQL = """
SELECT n.id, n.cluster_id, (
    SELECT min(lower(a.period)) FROM clusters_allocation a
    WHERE a.gpu_id = g.id AND a.is_live AND (upper_inf(a.period) OR upper(a.period) > %(now)s)
) AS next_start
FROM clusters_gpu g
JOIN clusters_node n ON n.id = g.node_id
JOIN clusters_cluster c ON c.id = n.cluster_id
WHERE c.region_id = %(region)s AND n.state = 'available' AND n.pool = ANY(%(pools)s::text[])
  AND g.health = 'healthy' AND NOT g.needs_cleanup
"""


def on_demand_until(*, organization: Organization, gpus: int) -> list[tuple[Region, datetime]]:
    """Per region, the latest end an on-demand lease of `gpus` could have if it started now, when
    only bounded windows are free (the next reservation on those GPUs), latest first; regions
    where it fits open-ended, or for less than the shortest lease, are left out."""
    now = timezone.now()
    found = []
    for region in Region.objects.order_by("code"):
        until = _latest_end(region, organization, gpus, now)
        if (
            until is not None
            and until != datetime.max.replace(tzinfo=UTC)
            and until - now >= settings.BOOKING_MIN_DURATION
        ):
            found.append((region, until.replace(second=0, microsecond=0)))
    return sorted(found, key=lambda pair: pair[1], reverse=True)


def _latest_end(region: Region, organization: Organization, gpus: int, now: datetime) -> datetime | None:
    never = datetime.max.replace(tzinfo=UTC)
    per_node: dict[int, list[datetime]] = {}
    cluster_of: dict[int, int] = {}
    with connection.cursor() as cursor:
        cursor.execute(NEXT_START_SQL, {"region": region.pk, "pools": pools_for(organization), "now": now})
        for node_id, cluster_id, next_start in cursor.fetchall():
            if next_start is None or next_start > now:
                per_node.setdefault(node_id, []).append(next_start or never)
                cluster_of[node_id] = cluster_id
    if gpus <= GPUS_PER_NODE:
        # A node can hold `gpus` GPUs until the gpus-th latest next booking among its free GPUs.
        ends = [sorted(starts, reverse=True)[gpus - 1] for starts in per_node.values() if len(starts) >= gpus]
        return max(ends, default=None)
    whole: dict[int, list[datetime]] = {}
    for node_id, starts in per_node.items():
        if len(starts) == GPUS_PER_NODE:
            whole.setdefault(cluster_of[node_id], []).append(min(starts))
    nodes = gpus // GPUS_PER_NODE
    ends = [sorted(until, reverse=True)[nodes - 1] for until in whole.values() if len(until) >= nodes]
    return max(ends, default=None)
