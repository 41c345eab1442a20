"""Telemetry reads: a lease's samples and hourly summaries, charts, /metrics rows, sample partitions."""

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from clusters.choices import LeaseState
from clusters.models import GPU, Allocation, GpuSample, Lease, LeaseTelemetryHour

MAX_SAMPLES = 20_000


@dataclass(frozen=True)
class LeaseTelemetry:
    """A lease's GPUs with their samples since a moment, and its hourly summaries."""

    lease: Lease
    since: datetime
    gpus: list[dict[str, Any]]
    hours: list[LeaseTelemetryHour]
    truncated: bool


def lease_telemetry(lease: Lease, *, since: datetime) -> LeaseTelemetry:
    """Samples of the lease's GPUs inside its allocation periods and after `since`, oldest first."""
    allocations = list(
        lease.allocations.filter(is_live=True).select_related("gpu", "node").order_by("gpu_id")
    )
    now = timezone.now()
    window = Q(pk__in=[])
    lowers, uppers = [], []
    for allocation in allocations:
        lower = max(allocation.period.lower, since)
        upper = allocation.period.upper or now
        window |= Q(gpu_id=allocation.gpu_id, at__gte=lower, at__lt=upper)
        lowers.append(lower)
        uppers.append(upper)
    if allocations:
        # One range around every window, so the planner reads only the partitions of these days
        # (it cannot prune from the OR of the windows alone); no sample is newer than now, so the
        # days made ahead are skipped too.
        window &= Q(at__gte=min(lowers), at__lte=min(max(uppers), now))
    fields = ("gpu_id", "at", "utilization_pct", "memory_used_bytes", "temperature_c", "power_draw_w")
    rows = list(GpuSample.objects.filter(window).order_by("at", "gpu_id").values(*fields)[: MAX_SAMPLES + 1])
    by_gpu: dict[int, list[dict[str, Any]]] = {allocation.gpu_id: [] for allocation in allocations}
    for row in rows[:MAX_SAMPLES]:
        by_gpu[row.pop("gpu_id")].append(row)
    gpus = [
        {"uuid": a.gpu.uuid, "index": a.gpu.index, "node": a.node.hostname, "samples": by_gpu[a.gpu_id]}
        for a in allocations
    ]
    hours = list(lease.telemetry_hours.filter(hour__gte=since.replace(minute=0, second=0, microsecond=0)))
    return LeaseTelemetry(lease, since, gpus, sorted(hours, key=lambda h: h.hour), len(rows) > MAX_SAMPLES)


def gpus_for_metrics() -> list[dict[str, Any]]:
    """Every GPU with a reading, its place in the fleet, and the lease holding it now (if any)."""
    fields = (
        "id",
        "index",
        "uuid",
        "node__hostname",
        "node__gpu_model",
        "node__cluster__name",
        "node__cluster__region__code",
        "utilization_pct",
        "memory_used_bytes",
        "memory_total_bytes",
        "temperature_c",
        "power_draw_w",
        "ecc_uncorrectable",
        "last_xid_code",
    )
    gpus = list(GPU.objects.filter(read_at__isnull=False).order_by("node__hostname", "index").values(*fields))
    holding = Allocation.objects.filter(
        is_live=True, lease__state=LeaseState.ACTIVE, period__contains=timezone.now()
    )
    lease_of = dict(holding.values_list("gpu_id", "lease__public_id"))
    for gpu in gpus:
        lease = lease_of.get(gpu["id"])
        gpu["lease"] = str(lease) if lease else ""
    return gpus


# A lease is idle when its GPUs' mean utilization stayed below this for the whole last hour.
IDLE_UTILIZATION_PCT = 5


IDLE_WINDOW = timedelta(hours=1)


# The charts show at most this much of a lease (samples are kept for days; a long lease would
# otherwise ship tens of thousands of points), thinned to about CHART_POINTS points per line.
CHART_SPAN = timedelta(hours=24)


CHART_POINTS = 240


# Up to one node's GPUs get a line each; a bigger lease is drawn as the mean and the busiest GPU.
GPU_LINES_MAX = 8


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


# --- Sample partitions (clusters/services/partitions.py makes and drops them).

SAMPLES_TABLE = "clusters_gpusample"
_BOUND = re.compile(r"FROM \((.+)\) TO \((.+)\)")


@dataclass(frozen=True)
class SamplePartition:
    """One partition of the samples table and the instants it holds: [lower, upper), None unbounded."""

    name: str
    lower: datetime | None
    upper: datetime | None

    def holds(self, at: datetime) -> bool:
        return (self.lower is None or self.lower <= at) and (self.upper is None or at < self.upper)


def sample_partitions() -> list[SamplePartition]:
    """The samples table's partitions, oldest first, as PostgreSQL's catalog describes them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            [SAMPLES_TABLE],
        )
        rows = cursor.fetchall()
    partitions = [SamplePartition(name, *_bounds(bound)) for name, bound in rows]
    return sorted(partitions, key=lambda p: (p.lower is not None, p.lower or timezone.now()))


def _bounds(expression: str) -> tuple[datetime | None, datetime | None]:
    """The bounds of `FOR VALUES FROM ('...') TO ('...')`; MINVALUE and MAXVALUE are None."""
    match = _BOUND.search(expression)
    if match is None:
        raise ValueError(f"not a range partition bound: {expression}")
    lower, upper = (
        None if "VALUE" in value else datetime.fromisoformat(value.strip("'")) for value in match.groups()
    )
    return lower, upper
