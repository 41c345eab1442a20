"""GET /metrics: the fleet's latest readings in the Prometheus text format, named as dcgm-exporter names them,
and the platform's own run-time health (`voltpark_*`: sweeps, agent errors, queues, lease transitions).

Dashboards built for NVIDIA's dcgm-exporter work unchanged: same metric names and units (framebuffer
in MiB, power in W), and its `gpu`, `UUID`, `modelName` and `Hostname` labels, plus ours: region,
cluster, node and lease. docs/alerts.rules.yml holds alerts written on the run-time series.
"""

import hmac
import logging
from collections.abc import Iterator
from itertools import chain
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from redis.exceptions import RedisError

from accounts.selectors.staff import is_staff_admin
from clusters.choices import DemandReason, LeaseState
from clusters.selectors.demand import fleet_capacity_figures
from clusters.selectors.runtime import MEASURES, SWEEP_BUCKETS, RuntimeFigures, runtime_figures
from clusters.selectors.telemetry import gpus_for_metrics

log = logging.getLogger(__name__)

LABELS = ["gpu", "UUID", "modelName", "Hostname", "region", "cluster", "node", "lease"]


MIB = 1024 * 1024


# (metric name, help, value from a GPU row)
METRICS: list[tuple[str, str, Any]] = [
    ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", lambda g: g["utilization_pct"]),
    ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", lambda g: _mib(g["memory_used_bytes"])),
    (
        "DCGM_FI_DEV_FB_FREE",
        "Framebuffer memory free (in MiB).",
        lambda g: _mib(g["memory_total_bytes"] - g["memory_used_bytes"])
        if g["memory_total_bytes"] is not None and g["memory_used_bytes"] is not None
        else None,
    ),
    ("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", lambda g: g["temperature_c"]),
    ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", lambda g: g["power_draw_w"]),
    ("DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.", lambda g: g["last_xid_code"] or 0),
    (
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "Total number of double-bit volatile ECC errors.",
        lambda g: g["ecc_uncorrectable"],
    ),
]


def _mib(value: int | None) -> float | None:
    return None if value is None else value / MIB


LINES_PER_CHUNK = 1000  # about 250 KB: what a scrape holds of its body at once


def fleet_exposition(gpus: list[dict[str, Any]]) -> Iterator[bytes]:
    """The dcgm series of every GPU in the text format, written directly, LINES_PER_CHUNK lines a chunk.

    Byte for byte what prometheus_client writes for a GaugeMetricFamily (labels sorted by name and
    escaped alike, values as `floatToGoString` writes them), without its object per sample and the
    whole body in memory at once: at 24,000 GPUs that was 168,000 samples, 3.1 s of CPU and 133 MiB
    more peak memory per scrape (the web worker's growth in the soak, and scrapes past their
    deadline); streamed, 0.25 s and 8 MiB (docs/benchmarks.md). Each GPU's labels are written once.
    """
    labels = [_label_text(gpu) for gpu in gpus]
    for name, help_text, value_of in METRICS:
        lines = [f"# HELP {name} {help_text}\n# TYPE {name} gauge\n"]
        for gpu, label_text in zip(gpus, labels, strict=True):
            value = value_of(gpu)
            if value is not None:
                lines.append(f"{name}{{{label_text}}} {floatToGoString(value)}\n")
            if len(lines) >= LINES_PER_CHUNK:
                yield "".join(lines).encode()
                lines = []
        yield "".join(lines).encode()


def _label_text(gpu: dict[str, Any]) -> str:
    pairs = sorted(zip(LABELS, _labels(gpu), strict=True))
    return ",".join(f'{key}="{_escaped(value)}"' for key, value in pairs)


def _escaped(value: str) -> str:
    """A label value as the text format escapes it."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class CapacityCollector(Collector):
    """Fleet capacity and demand: free GPUs by region and pool, the queue, refusals, leases by state."""

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        figures = fleet_capacity_figures()
        free = GaugeMetricFamily(
            "voltpark_gpus_free", "GPUs an on-demand lease could take now.", labels=["region", "pool"]
        )
        for (region, pool), count in figures.free_gpus.items():
            free.add_metric([region, pool], count)
        yield free
        requests = GaugeMetricFamily(
            "voltpark_lease_requests_queued",
            "Queued lease requests (region any: any region).",
            labels=["region"],
        )
        gpus = GaugeMetricFamily(
            "voltpark_lease_requests_queued_gpus", "GPUs asked for by queued requests.", labels=["region"]
        )
        for depth in figures.queued:
            requests.add_metric([depth.region], depth.requests)
            gpus.add_metric([depth.region], depth.gpus)
        yield requests
        yield gpus
        refused = CounterMetricFamily(
            "voltpark_bookings_refused",
            "Bookings refused for want of capacity or quota, and queued requests expired.",
            labels=["reason"],
        )
        for reason in DemandReason.values:
            refused.add_metric([reason], figures.refused.get(reason, 0))
        yield refused
        leases = GaugeMetricFamily("voltpark_leases", "Leases by state.", labels=["state"])
        for state in LeaseState.values:
            leases.add_metric([state], figures.leases.get(state, 0))
        yield leases


def _labels(gpu: dict[str, Any]) -> list[str]:
    hostname = gpu["node__hostname"]
    return [
        str(gpu["index"]),
        gpu["uuid"],
        gpu["node__gpu_model"],
        hostname,
        gpu["node__cluster__region__code"],
        gpu["node__cluster__name"],
        hostname,
        gpu["lease"],
    ]


class RuntimeCollector(Collector):
    """The run time's own health, as clusters/services/runtime.py recorded it in Redis; with Redis
    away only `voltpark_runtime_up 0`, so the scrape (and the fleet's series) still answers."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("voltpark_runtime_up", "Whether the run-time figures could be read (Redis).")
        try:
            figures = runtime_figures()
        except RedisError as exc:
            log.warning("run-time figures unreadable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from runtime_families(figures)


def runtime_families(figures: RuntimeFigures) -> Iterator[Metric]:
    """Every run-time series from one read of the figures."""
    yield from _sweep_families(figures)
    yield _counter(
        "voltpark_agent_errors",
        "Node agents that missed a poll (after its retry), by error kind.",
        ["region", "error"],
        figures.agent_errors,
    )
    yield _counter(
        "voltpark_poll_mass_misses",
        "Poll chunks a large share of whose nodes missed at once (POLL_MASS_MISS_PCT): taken for the poller's"
        " trouble, their nodes failed only after HEALTH_MASS_MISS_SWEEPS such misses in a row.",
        ["region"],
        figures.poll_mass_misses,
    )
    yield _counter(
        "voltpark_lease_transitions",
        "Leases moved by the lifecycle sweeps, by region and states.",
        ["region", "from_state", "to_state"],
        figures.transitions,
    )
    yield _counter(
        "voltpark_runtime_takeovers",
        "Ticks of a region's work also sent to a helper region's queue (its own not served).",
        ["kind", "region", "helper"],
        figures.takeovers,
    )
    yield from _queue_families(figures)


def _sweep_families(figures: RuntimeFigures) -> Iterator[Metric]:
    labels = ["kind", "region"]
    for measure, help_text, sums in (
        ("duration", "How long each lease sweep or poll chunk ran.", figures.sweep_seconds),
        ("lateness", "How long after its tick was dispatched each sweep began.", figures.sweep_lateness),
    ):
        histogram = HistogramMetricFamily(f"voltpark_sweep_{measure}_seconds", help_text, labels=labels)
        for key, count in sorted(figures.sweeps.items()):
            buckets = [
                (repr(b), figures.sweep_buckets.get((*key, measure, repr(b)), 0.0)) for b in SWEEP_BUCKETS
            ]
            histogram.add_metric(list(key), [*buckets, ("+Inf", count)], sum_value=sums.get(key, 0.0))
        yield histogram
    last = {
        measure: GaugeMetricFamily(
            f"voltpark_sweep_last_{measure}_seconds",
            f"The {measure} of each region's last sweep.",
            labels=labels,
        )
        for measure in MEASURES
    }
    finished = GaugeMetricFamily(
        "voltpark_sweep_last_finished_timestamp_seconds",
        "When each region's last sweep finished.",
        labels=labels,
    )
    for key, (duration, lateness, at) in sorted(figures.sweep_last.items()):
        last["duration"].add_metric(list(key), duration)
        last["lateness"].add_metric(list(key), lateness)
        finished.add_metric(list(key), at)
    yield from (*last.values(), finished)


def _queue_families(figures: RuntimeFigures) -> Iterator[Metric]:
    lengths = GaugeMetricFamily(
        "voltpark_queue_length", "Tasks waiting in each Celery queue.", labels=["queue"]
    )
    for queue, length in sorted(figures.queue_lengths.items()):
        lengths.add_metric([queue], length)
    yield lengths
    served = GaugeMetricFamily(
        "voltpark_queue_served_timestamp_seconds",
        "When a task from each run-time queue last finished.",
        labels=["queue"],
    )
    for queue, at in sorted(figures.served.items()):
        served.add_metric([queue], at)
    yield served


def _counter(name: str, help_text: str, labels: list[str], values: dict[tuple[str, ...], float]) -> Metric:
    family = CounterMetricFamily(name, help_text, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def _allowed(request: HttpRequest) -> bool:
    """A staff session, or the scrape token as a bearer token (compared in constant time)."""
    if is_staff_admin(request.user):
        return True
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    expected = settings.METRICS_SCRAPE_TOKEN
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), expected)


def metrics(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The Prometheus scrape endpoint."""
    if not _allowed(request):
        return HttpResponse(
            "Staff session or scrape token required.\n", status=403, content_type="text/plain"
        )
    # Both read now, inside the request; only the writing of the fleet's lines is streamed.
    gpus = gpus_for_metrics()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CapacityCollector())
    registry.register(RuntimeCollector())
    platform = generate_latest(registry)
    return StreamingHttpResponse(chain(fleet_exposition(gpus), [platform]), content_type=CONTENT_TYPE_LATEST)
