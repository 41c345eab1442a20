"""Reads behind the customer's booking and lease pages: grouped lists, nodes, charts, idleness."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from accounts.models import Organization
from billing.money import amount_for, gpu_hours
from clusters.capacity import Window
from clusters.choices import LeaseState
from clusters.models import Lease, Region
from clusters.selectors import TimelineHour, capacity_timeline, gpus_held_at_peak
from clusters.selectors_runtime import lease_telemetry
from nodeagent import account_for_lease

PAST_LEASES_SHOWN = 50
# A lease is idle when its GPUs' mean utilization stayed below this for the whole last hour.
IDLE_UTILIZATION_PCT = 5
IDLE_WINDOW = timedelta(hours=1)
# The charts show at most this much of a lease (samples are kept for days; a long lease would
# otherwise ship tens of thousands of points), thinned to about CHART_POINTS points per line.
CHART_SPAN = timedelta(hours=24)
CHART_POINTS = 240
# Up to one node's GPUs get a line each; a bigger lease is drawn as the mean and the busiest GPU.
GPU_LINES_MAX = 8


@dataclass(frozen=True)
class LeaseGroups:
    """An organization's leases as the list page shows them."""

    upcoming: list[Lease]
    active: list[Lease]
    past: list[Lease]


def leases_grouped(organization: Organization) -> LeaseGroups:
    """Upcoming (scheduled), active, and the latest past leases; one query, no per-row reads."""
    rows = Lease.objects.filter(organization=organization).select_related("region", "booked_by")
    live = list(rows.filter(state__in=(LeaseState.SCHEDULED, LeaseState.ACTIVE)).order_by("start", "pk"))
    past = rows.exclude(state__in=(LeaseState.SCHEDULED, LeaseState.ACTIVE)).order_by("-start", "-pk")
    return LeaseGroups(
        upcoming=[lease for lease in live if lease.state == LeaseState.SCHEDULED],
        active=[lease for lease in live if lease.state == LeaseState.ACTIVE],
        past=list(past[:PAST_LEASES_SHOWN]),
    )


@dataclass(frozen=True)
class LeaseNode:
    """A node a lease holds GPUs on, and how to reach it."""

    hostname: str
    gpu_indices: list[int]
    ssh_command: str


def lease_nodes(lease: Lease) -> list[LeaseNode]:
    """The nodes of the lease's live allocations, each with its GPUs and its SSH command."""
    account = account_for_lease(str(lease.public_id))
    nodes: dict[str, list[int]] = {}
    rows = lease.allocations.filter(is_live=True).values_list("node__hostname", "gpu__index")
    for hostname, index in rows.order_by("node__hostname", "gpu__index"):
        nodes.setdefault(hostname, []).append(index)
    return [LeaseNode(host, indices, f"ssh {account}@{host}") for host, indices in nodes.items()]


@dataclass(frozen=True)
class UsageSoFar:
    """What a lease has used until an instant: GPU-hours and their cost at the booked price."""

    at: datetime
    gpu_seconds: int
    gpu_hours: Decimal
    amount: Decimal


# Bounds truncated to the second and an open period clipped at `at`, as billing measures usage.
USED_SQL = """
SELECT coalesce(sum(extract(epoch FROM
    least(date_trunc('second', coalesce(upper(period), %(at)s)), %(at)s)
    - date_trunc('second', lower(period)))::bigint), 0)
FROM clusters_allocation
WHERE lease_id = %(lease)s AND is_live AND lower(period) < %(at)s
"""


def lease_usage_until(lease: Lease, at: datetime | None = None) -> UsageSoFar:
    """GPU-seconds of the lease's live allocations up to `at` (now), as billing measures them."""
    at = (at or timezone.now()).replace(microsecond=0)
    with connection.cursor() as cursor:
        cursor.execute(USED_SQL, {"lease": lease.pk, "at": at})
        seconds = int(cursor.fetchone()[0])
    amount = amount_for(Decimal(seconds) * lease.price_per_gpu_hour)
    return UsageSoFar(at=at, gpu_seconds=seconds, gpu_hours=gpu_hours(seconds), amount=amount)


def quota_left(*, organization: Organization, window: Window) -> int:
    """GPUs the organization may still add at the busiest instant of the window."""
    held = gpus_held_at_peak(organization=organization, window=window)
    return max(organization.gpu_quota - held, 0)


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


METRICS = (
    ("utilization_pct", "GPU utilization", "%"),
    ("memory_used_bytes", "GPU memory used", "GiB"),
    ("temperature_c", "GPU temperature", "°C"),
    ("power_draw_w", "GPU power", "W"),
)


@dataclass
class MetricSeries:
    """One metric of a lease's GPUs: a line per GPU (or mean and max for many GPUs)."""

    key: str
    title: str
    unit: str
    lines: dict[str, list[tuple[datetime, float | None]]] = field(default_factory=dict)


@dataclass(frozen=True)
class LeaseCharts:
    """What the lease page charts: each metric's lines, the span shown and whether the lease idles."""

    since: datetime
    clipped: bool
    metrics: list[MetricSeries]
    idle: bool
    samples: int


def lease_charts(lease: Lease, now: datetime | None = None) -> LeaseCharts:
    """The lease's GPU readings over (at most the last day of) the lease, ready to draw."""
    now = now or timezone.now()
    since = max(lease.start, now - CHART_SPAN)
    telemetry = lease_telemetry(lease, since=since)
    gpus = telemetry.gpus
    metrics = [_metric(gpus, key, title, unit) for key, title, unit in METRICS]
    samples = sum(len(gpu["samples"]) for gpu in gpus)
    return LeaseCharts(since, since > lease.start, metrics, _idle(lease, gpus, now), samples)


def _metric(gpus: list[dict[str, Any]], key: str, title: str, unit: str) -> MetricSeries:
    scale = 1 / 2**30 if key == "memory_used_bytes" else 1
    metric = MetricSeries(key, title, unit)
    one_node = len({gpu["node"] for gpu in gpus}) == 1
    per_gpu = {
        (f"GPU {gpu['index']}" if one_node else f"{gpu['node']}/{gpu['index']}"): [
            (s["at"], None if s[key] is None else s[key] * scale) for s in gpu["samples"]
        ]
        for gpu in gpus
    }
    if len(per_gpu) <= GPU_LINES_MAX:
        metric.lines = {name: _thin(points) for name, points in per_gpu.items()}
    else:
        metric.lines = _mean_and_max(per_gpu)
    return metric


def _thin(points: list[tuple[datetime, float | None]]) -> list[tuple[datetime, float | None]]:
    step = max(1, len(points) // CHART_POINTS)
    return points[::step] if step > 1 else points


def _mean_and_max(per_gpu: dict[str, list[tuple[datetime, float | None]]]) -> dict[str, list[Any]]:
    by_minute: dict[datetime, list[float]] = {}
    for points in per_gpu.values():
        for at, value in points:
            if value is not None:
                by_minute.setdefault(at.replace(second=0, microsecond=0), []).append(value)
    ordered = sorted(by_minute.items())
    mean = [(at, sum(values) / len(values)) for at, values in ordered]
    peak = [(at, max(values)) for at, values in ordered]
    return {"mean of all GPUs": _thin(mean), "busiest GPU": _thin(peak)}  # type: ignore[arg-type]


def _idle(lease: Lease, gpus: list[dict[str, Any]], now: datetime) -> bool:
    """Running for over an hour, readings all through the last hour, and utilization near zero."""
    if lease.state != LeaseState.ACTIVE or lease.start > now - IDLE_WINDOW:
        return False
    recent = [
        s["utilization_pct"]
        for gpu in gpus
        for s in gpu["samples"]
        if s["at"] >= now - IDLE_WINDOW and s["utilization_pct"] is not None
    ]
    first = min((s["at"] for gpu in gpus for s in gpu["samples"]), default=None)
    covered = first is not None and first <= now - IDLE_WINDOW + timedelta(minutes=5)
    return bool(recent) and covered and sum(recent) / len(recent) < IDLE_UTILIZATION_PCT
