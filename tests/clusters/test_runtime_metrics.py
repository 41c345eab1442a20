"""/metrics exports the run time's own health (each region's sweeps: duration and lateness, agent
errors by kind, queue lengths, lease transitions, takeovers), and the sample alert rules in docs/ are
valid for promtool, fire as their unit tests say, and name only series /metrics exports."""

import re
import shutil
import subprocess
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from accounts.models import Organization, User
from clusters.choices import LeaseState
from clusters.models import Lease
from clusters.selectors.runtime import KEY_SERVED
from clusters.tasks import fleet_poll_chunk, leases_enforce, leases_enforce_dispatch
from clusters.views.metrics import LABELS, METRICS, _labels, fleet_exposition
from core.cache import redis_client
from tests.clusters.helpers import Fleet, gpus_of, lease_on

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "alerts.rules.yml"
RULE_TESTS = ROOT / "docs" / "alerts.tests.yml"
TOKEN = "scrape-secret"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(autouse=True)
def scrape_token(settings) -> None:
    settings.METRICS_SCRAPE_TOKEN = TOKEN
    settings.POLL_TIMEOUT_MS = 300
    settings.POLL_RETRY_TIMEOUT_MS = 300
    settings.POLL_RETRY_DELAY_MS = 100
    redis.Redis.from_url(django_settings.REDIS_URL).flushdb()


def scrape() -> tuple[int, str]:
    answer = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    return answer.status_code, answer.getvalue().decode()


def samples(text: str) -> Samples:
    """Every sample of the exposition text by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def regions_at_work(fleet_of: Callable[..., Fleet], acme: Organization, alice: User) -> Lease:
    """In us-tx-1 one lease sweep that starts a due lease a little late and one poll chunk with a node
    too slow to answer; us-va-1's lease queue unserved for a minute; then a lease tick dispatched."""
    fleet = fleet_of(2)
    fleet_of(1, region="us-va-1")
    redis_client().hset(KEY_SERVED, "leases.us-va-1", time.time() - 60)
    up, down = fleet.nodes
    lease = lease_on(
        gpus_of(up, [0]), organization=acme, booked_by=alice, start=timezone.now() - timedelta(seconds=1)
    )
    leases_enforce.apply(kwargs={"region": "us-tx-1", "queue": "leases.us-tx-1", "due": time.time() - 0.3})
    fleet.sim.set_fault(down.hostname, "slow", seconds=5)
    node_ids = [node.pk for node in fleet.nodes]
    fleet_poll_chunk.apply(
        args=[node_ids], kwargs={"region": "us-tx-1", "queue": "poll.us-tx-1", "due": time.time()}
    )
    leases_enforce_dispatch.apply()
    return lease


def test_metrics_show_a_region_s_sweeps_agent_errors_queue_lengths_and_lease_transitions(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User
) -> None:
    lease = regions_at_work(fleet_of, acme, alice)

    status, text = scrape()

    assert status == 200
    found = samples(text)
    assert Lease.objects.get(pk=lease.pk).state == LeaseState.ACTIVE
    assert value(found, "voltpark_runtime_up") == 1
    started = {"region": "us-tx-1", "from_state": "scheduled", "to_state": "active"}
    assert value(found, "voltpark_lease_transitions_total", **started) == 1
    assert value(found, "voltpark_agent_errors_total", region="us-tx-1", error="timeout") == 1
    for kind in ("leases", "poll"):
        where = {"kind": kind, "region": "us-tx-1"}
        assert value(found, "voltpark_sweep_duration_seconds_count", **where) == 1
        assert value(found, "voltpark_sweep_duration_seconds_bucket", **where, le="+Inf") == 1
        assert value(found, "voltpark_sweep_last_finished_timestamp_seconds", **where) == pytest.approx(
            time.time(), abs=60
        )
    late = {"kind": "leases", "region": "us-tx-1"}
    assert value(found, "voltpark_sweep_last_lateness_seconds", **late) >= 0.3
    assert value(found, "voltpark_sweep_lateness_seconds_bucket", **late, le="0.25") == 0
    assert value(found, "voltpark_sweep_lateness_seconds_bucket", **late, le="60.0") == 1
    # The slow node cost the poll chunk two deadlines (0.3 s) and the retry delay (0.1 s).
    poll = {"kind": "poll", "region": "us-tx-1"}
    assert value(found, "voltpark_sweep_duration_seconds_bucket", **poll, le="0.5") == 0
    assert value(found, "voltpark_sweep_duration_seconds_bucket", **poll, le="5.0") == 1
    assert value(found, "voltpark_sweep_duration_seconds_sum", **poll) >= 0.7
    # us-tx-1's own tick and us-va-1's, taken over; us-va-1's own waits for its absent workers.
    assert value(found, "voltpark_queue_length", queue="leases.us-tx-1") == 2
    assert value(found, "voltpark_queue_length", queue="leases.us-va-1") == 1
    taken = {"kind": "leases", "region": "us-va-1", "helper": "us-tx-1"}
    assert value(found, "voltpark_runtime_takeovers_total", **taken) == 1
    assert value(found, "voltpark_queue_length", queue="poll.us-tx-1") == 0
    assert value(found, "voltpark_queue_served_timestamp_seconds", queue="poll.us-tx-1") is not None


def test_a_poll_chunk_most_of_whose_nodes_missed_is_counted_for_the_alert(
    fleet_of: Callable[..., Fleet], settings
) -> None:
    settings.POLL_MASS_MISS_MIN_NODES = 2
    fleet = fleet_of(3)
    node_ids = [node.pk for node in fleet.nodes]
    where = {"region": "us-tx-1", "queue": "poll.us-tx-1"}
    fleet_poll_chunk.apply(args=[node_ids], kwargs={**where, "due": time.time()})
    for node in fleet.nodes[:2]:
        fleet.sim.set_fault(node.hostname, "refuse")
    fleet_poll_chunk.apply(args=[node_ids], kwargs={**where, "due": time.time()})

    _, text = scrape()

    # Two chunks polled, the second with 2 of 3 nodes missing (over POLL_MASS_MISS_PCT's 20 %).
    found = samples(text)
    assert value(found, "voltpark_sweep_duration_seconds_count", kind="poll", region="us-tx-1") == 2
    assert value(found, "voltpark_poll_mass_misses_total", region="us-tx-1") == 1


def test_with_redis_away_metrics_still_answer_the_fleet_and_say_the_run_time_is_unreadable(
    fleet_of: Callable[..., Fleet], settings
) -> None:
    fleet_of(1)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
        }
    }

    status, text = scrape()

    assert status == 200
    found = samples(text)
    assert value(found, "voltpark_runtime_up") == 0
    assert not any(name.startswith("voltpark_sweep") for name, _ in found)
    assert "# TYPE DCGM_FI_DEV_GPU_TEMP gauge" in text


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian's prometheus package; .ci/run installs it)")
    return found


def test_the_sample_alert_rules_pass_promtool_check_rules() -> None:
    result = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)

    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"SUCCESS: [1-9]\d* rules found", result.stdout + result.stderr)


def test_the_sample_alerts_fire_as_their_unit_tests_say() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name], capture_output=True, text=True, cwd=RULE_TESTS.parent
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_series_the_alert_rules_name_is_exported_by_metrics(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User
) -> None:
    regions_at_work(fleet_of, acme, alice)
    _, text = scrape()
    exported = {name for name, _ in samples(text)}

    named = set(re.findall(r"\bvoltpark_[a-z_]+\b", RULES.read_text()))

    assert named, "the rules name no voltpark_ series"
    assert named <= exported, sorted(named - exported)


def gpu_rows(count: int) -> list[dict[str, Any]]:
    """GPU rows as the metrics selector reads them, of a made-up fleet."""
    return [
        {
            "id": i,
            "index": i % 8,
            "uuid": f"GPU-{i:08d}-0000-4000-8000-000000000000",
            "node__hostname": f"tx1-c{i // 256:02d}-n{i // 8 % 32:03d}",
            "node__gpu_model": "NVIDIA H100 80GB HBM3",
            "node__cluster__name": f"tx1-c{i // 256:02d}",
            "node__cluster__region__code": "us-tx-1",
            "utilization_pct": i % 101,
            "memory_used_bytes": i * 2**20,
            "memory_total_bytes": 80 * 2**30,
            "temperature_c": 40 + i % 50,
            "power_draw_w": 100.25 + i,
            "ecc_uncorrectable": i % 3,
            "last_xid_code": 79 if i % 97 == 0 else None,
            "lease": "0b7e6c1e-5a34-4c38-9d7e-3f1a2b4c5d6e" if i % 2 else "",
        }
        for i in range(count)
    ]


class AsPrometheusClientWrites(Collector):
    """The fleet's series built with prometheus_client's own families: what the text must equal."""

    def __init__(self, gpus: list[dict[str, Any]]) -> None:
        self.gpus = gpus

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, help_text, value_of in METRICS:
            family = GaugeMetricFamily(name, help_text, labels=LABELS)
            for gpu in self.gpus:
                if (value := value_of(gpu)) is not None:
                    family.add_metric(_labels(gpu), value)
            yield family


def test_the_fleet_series_are_byte_for_byte_what_prometheus_client_writes() -> None:
    gpus = gpu_rows(300)
    gpus[3]["lease"] = 'a "quoted" back\\slash and\na new line'
    gpus[5]["utilization_pct"] = None
    gpus[6]["power_draw_w"] = 1e21
    gpus[7]["memory_used_bytes"] = None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AsPrometheusClientWrites(gpus))

    assert b"".join(fleet_exposition(gpus)) == generate_latest(registry)


def test_a_scrape_of_thousands_of_gpus_never_holds_its_whole_body_in_memory() -> None:
    # Built as prometheus_client's objects, a scrape of the whole fleet (24,000 GPUs) took 134 MiB
    # more at its peak than before it: the web worker's memory grew with every scrape in the soak.
    gpus = gpu_rows(4000)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        body = sum(len(chunk) for chunk in fleet_exposition(gpus))
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()

    assert body > 5 * 2**20 and peak < body / 2, (body, peak)
