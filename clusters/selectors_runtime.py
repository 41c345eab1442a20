"""Reads of the run time: a lease's telemetry, the fleet's nodes for staff, the metrics export."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from clusters.choices import GpuHealth, LeaseState
from clusters.models import GPU, Allocation, GpuSample, HealthEvent, Lease, LeaseUsageHour, Node

MAX_SAMPLES = 20_000


@dataclass(frozen=True)
class LeaseTelemetry:
    """A lease's GPUs with their samples since a moment, and its hourly summaries."""

    lease: Lease
    since: datetime
    gpus: list[dict[str, Any]]
    hours: list[LeaseUsageHour]
    truncated: bool


def lease_telemetry(lease: Lease, *, since: datetime) -> LeaseTelemetry:
    """Samples of the lease's GPUs inside its allocation periods and after `since`, oldest first."""
    allocations = list(
        lease.allocations.filter(is_live=True).select_related("gpu", "node").order_by("gpu_id")
    )
    window = Q(pk__in=[])
    for allocation in allocations:
        lower = max(allocation.period.lower, since)
        part = Q(gpu_id=allocation.gpu_id, at__gte=lower)
        if allocation.period.upper is not None:
            part &= Q(at__lt=allocation.period.upper)
        window |= part
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


def nodes_for_staff(*, state: str | None = None, region: str | None = None) -> QuerySet[Node]:
    """Every node with its GPU counts and open health events, for the staff fleet view."""
    nodes = Node.objects.select_related("cluster__region").order_by("hostname")
    if state:
        nodes = nodes.filter(state=state)
    if region:
        nodes = nodes.filter(cluster__region__code=region)
    open_events = (
        HealthEvent.objects.filter(ended_at__isnull=True).select_related("gpu").order_by("started_at")
    )
    return nodes.annotate(
        gpus_total=Count("gpus"),
        gpus_healthy=Count("gpus", filter=Q(gpus__health=GpuHealth.HEALTHY)),
        gpus_need_cleanup=Count("gpus", filter=Q(gpus__needs_cleanup=True)),
    ).prefetch_related(Prefetch("health_events", queryset=open_events, to_attr="open_events"))


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
