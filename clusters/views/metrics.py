"""GET /metrics: the fleet's latest readings in the Prometheus text format, named as dcgm-exporter names them.

Dashboards built for NVIDIA's dcgm-exporter work unchanged: same metric names and units (framebuffer
in MiB, power in W), and its `gpu`, `UUID`, `modelName` and `Hostname` labels, plus ours: region,
cluster, node and lease.
"""

import hmac
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from accounts.selectors.staff import is_staff_admin
from clusters.selectors.telemetry import gpus_for_metrics

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


class FleetCollector(Collector):
    """Yields one gauge family per dcgm metric, a sample per GPU that has a reading."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gpus = gpus_for_metrics()
        labels = [_labels(gpu) for gpu in gpus]
        for name, help_text, value_of in METRICS:
            family = GaugeMetricFamily(name, help_text, labels=LABELS)
            for gpu, label_values in zip(gpus, labels, strict=True):
                value = value_of(gpu)
                if value is not None:
                    family.add_metric(label_values, value)
            yield family


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


def _allowed(request: HttpRequest) -> bool:
    """A staff session, or the scrape token as a bearer token (compared in constant time)."""
    if is_staff_admin(request.user):
        return True
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    expected = settings.METRICS_SCRAPE_TOKEN
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), expected)


def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus scrape endpoint."""
    if not _allowed(request):
        return HttpResponse(
            "Staff session or scrape token required.\n", status=403, content_type="text/plain"
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
