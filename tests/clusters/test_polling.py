"""Polling the fleet over real HTTP against the simulated node agent: readings, samples, health rules."""

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from accounts.models import AuditEntry, Organization, User
from clusters.choices import GpuHealth, HealthEventKind, LeaseState, NodeState
from clusters.models import GPU, GpuSample, HealthEvent, Lease, LeaseTelemetryHour, Node
from clusters.services.telemetry import fleet_poll
from nodeagent.simulator import start_in_thread
from tests.clusters.helpers import AGENT_TOKEN, Fleet, gpus_of, lease_on, serve_fleet

FAULTS = [
    ("xid", {"code": 79}, HealthEventKind.XID, GpuHealth.FAILED),
    ("ecc", {"count": 3}, HealthEventKind.ECC, GpuHealth.FAILED),
    ("overheat", {"temperature_c": 96}, HealthEventKind.OVERHEAT, GpuHealth.DEGRADED),
    ("gpu_lost", {}, HealthEventKind.GPU_MISSING, GpuHealth.FAILED),
]


def active_lease(
    node: Node, acme: Organization, alice: User, indices: list[int] | None = None, start=None
) -> Lease:
    start = start or timezone.now() - timedelta(minutes=5)
    return lease_on(
        gpus_of(node, indices), organization=acme, booked_by=alice, start=start, state=LeaseState.ACTIVE
    )


def test_a_sweep_stores_a_reading_for_every_gpu(fleet_of: Callable[..., Fleet]) -> None:
    fleet = fleet_of(3)

    report = fleet_poll()

    assert (report.nodes, report.answered, report.gpus_read, report.samples_stored) == (3, 3, 24, 24)
    gpus = GPU.objects.filter(node__in=fleet.nodes)
    assert gpus.filter(read_at__isnull=True).count() == 0
    assert gpus.filter(utilization_pct__isnull=True).count() == 0
    assert set(gpus.values_list("memory_total_bytes", flat=True)) == {80 * 1024**3}
    assert GpuSample.objects.count() == 24
    assert Node.objects.filter(last_seen_at__isnull=True).count() == 0
    assert Node.objects.exclude(state=NodeState.AVAILABLE).count() == 0


def test_samples_are_kept_once_per_sample_interval_not_every_poll(
    fleet_of: Callable[..., Fleet], settings
) -> None:
    settings.TELEMETRY_SAMPLE_INTERVAL_S = 3600
    fleet_of(1)
    now = timezone.now().replace(minute=10)

    fleet_poll(now=now)
    fleet_poll(now=now + timedelta(seconds=5))
    fleet_poll(now=now + timedelta(hours=1))

    assert GpuSample.objects.count() == 16
    assert GPU.objects.filter(read_at=now + timedelta(hours=1)).count() == 8


@pytest.mark.parametrize(("fault", "params", "kind", "gpu_health"), FAULTS, ids=[f[0] for f in FAULTS])
def test_each_fault_drives_its_node_unhealthy_and_flags_its_leases(
    fleet_of: Callable[..., Fleet],
    acme: Organization,
    alice: User,
    fault,
    params,
    kind,
    gpu_health,
    settings,
    django_capture_on_commit_callbacks,
) -> None:
    settings.STAFF_NOTIFY_EMAILS = ["ops@voltpark.example"]
    fleet = fleet_of(2)
    sick, well = fleet.nodes
    lease = active_lease(sick, acme, alice, [0, 1, 2, 3])
    other = active_lease(well, acme, alice)
    fleet.sim.set_fault(sick.hostname, fault, gpu_index=2, **params)

    with django_capture_on_commit_callbacks(execute=True):
        report = fleet_poll()

    sick.refresh_from_db()
    assert sick.state == NodeState.UNHEALTHY and report.nodes_made_unhealthy == [sick.hostname]
    event = HealthEvent.objects.get()
    assert (event.node, event.kind, event.gpu.index, event.ended_at) == (sick, kind, 2, None)
    assert list(event.leases.all()) == [lease]
    assert Lease.objects.get(pk=lease.pk).health_flagged is True
    assert Lease.objects.get(pk=other.pk).health_flagged is False
    assert GPU.objects.get(node=sick, index=2).health == gpu_health
    assert Node.objects.get(pk=well.pk).state == NodeState.AVAILABLE
    recipients = sorted(address for message in mail.outbox for address in message.to)
    assert recipients == ["alice@acme.example", "ops@voltpark.example"]
    assert AuditEntry.objects.filter(action="node.health_failed", object_id=str(sick.public_id)).count() == 1


def test_a_second_sweep_with_the_same_fault_opens_no_second_event(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User
) -> None:
    fleet = fleet_of(1)
    active_lease(fleet.nodes[0], acme, alice)
    fleet.sim.set_fault(fleet.nodes[0].hostname, "ecc", gpu_index=5, count=1)

    fleet_poll()
    mail.outbox.clear()
    report = fleet_poll()

    assert HealthEvent.objects.count() == 1 and report.events_opened == []
    assert mail.outbox == []


def test_an_unreachable_agent_fails_its_node_after_the_configured_sweeps(
    fleet_of: Callable[..., Fleet], settings
) -> None:
    settings.HEALTH_UNREACHABLE_SWEEPS = 2
    settings.POLL_TIMEOUT_MS = 300
    settings.POLL_RETRY_TIMEOUT_MS = 300
    fleet = fleet_of(2)
    down = fleet.nodes[0]
    fleet.sim.set_fault(down.hostname, "refuse")

    first = fleet_poll()
    assert first.unreachable == [down.hostname]
    assert Node.objects.get(pk=down.pk).state == NodeState.AVAILABLE
    second = fleet_poll()

    down.refresh_from_db()
    assert (down.state, down.unreachable_sweeps) == (NodeState.UNHEALTHY, 2)
    assert second.nodes_made_unhealthy == [down.hostname]
    assert HealthEvent.objects.get().kind == HealthEventKind.UNREACHABLE
    assert GPU.objects.filter(node=fleet.nodes[1], read_at__isnull=False).count() == 8


def test_a_slow_agent_does_not_slow_the_sweep_for_the_others(
    fleet_of: Callable[..., Fleet], settings
) -> None:
    settings.POLL_TIMEOUT_MS = 400
    settings.POLL_RETRY_TIMEOUT_MS = 400
    fleet = fleet_of(20)
    fleet.sim.set_fault(fleet.nodes[0].hostname, "slow", seconds=10)

    started = time.monotonic()
    report = fleet_poll()
    elapsed = time.monotonic() - started

    assert elapsed < 2.0
    assert report.unreachable == [fleet.nodes[0].hostname]
    assert report.answered == 19
    assert GPU.objects.filter(read_at__isnull=False).count() == 19 * 8


def test_a_cleared_fault_ends_its_event_but_the_node_stays_out_until_undrained(
    fleet_of: Callable[..., Fleet],
) -> None:
    fleet = fleet_of(1)
    node = fleet.nodes[0]
    fleet.sim.set_fault(node.hostname, "overheat", gpu_index=1, temperature_c=99)
    fleet_poll()
    fleet.sim.clear_faults(node.hostname)

    report = fleet_poll()

    event = HealthEvent.objects.get()
    assert report.events_ended == 1 and event.ended_at is not None and event.ended_at > event.started_at
    assert Node.objects.get(pk=node.pk).state == NodeState.UNHEALTHY


def test_an_xid_from_before_an_admin_undrained_the_node_is_not_counted_again(
    fleet_of: Callable[..., Fleet], stella: User
) -> None:
    from clusters.services.health import node_undrain

    fleet = fleet_of(1)
    node = fleet.nodes[0]
    fleet.sim.set_fault(node.hostname, "xid", gpu_index=0, code=79)
    fleet_poll()
    node_undrain(node=Node.objects.get(pk=node.pk), actor=stella, reason="GPU reset")

    fleet_poll()

    assert Node.objects.get(pk=node.pk).state == NodeState.AVAILABLE
    assert HealthEvent.objects.filter(ended_at__isnull=True).count() == 0
    assert GPU.objects.get(node=node, index=0).health == GpuHealth.HEALTHY


def test_an_xid_code_that_is_not_critical_leaves_the_node_in_service(fleet_of: Callable[..., Fleet]) -> None:
    fleet = fleet_of(1)
    fleet.sim.set_fault(fleet.nodes[0].hostname, "xid", gpu_index=0, code=13)

    fleet_poll()

    assert Node.objects.get().state == NodeState.AVAILABLE and HealthEvent.objects.count() == 0
    assert GPU.objects.get(index=0).last_xid_code == 13


def test_each_poll_adds_to_the_lease_hour_summary(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User, settings
) -> None:
    fleet = fleet_of(2)
    now = timezone.now().replace(minute=30)
    lease = active_lease(fleet.nodes[0], acme, alice, [0, 1], start=now - timedelta(minutes=10))

    fleet_poll(now=now)
    fleet_poll(now=now + timedelta(seconds=settings.POLL_INTERVAL_S))

    hour = LeaseTelemetryHour.objects.get()
    assert hour.lease == lease and hour.hour == now.replace(minute=0, second=0, microsecond=0)
    assert hour.readings == 4
    gpus = GPU.objects.filter(node=fleet.nodes[0], index__in=[0, 1])
    assert hour.memory_peak_bytes >= max(gpus.values_list("memory_used_bytes", flat=True))
    assert 0 <= hour.mean_utilization_pct <= 100
    # Two readings of two GPUs, each standing for one poll interval of power draw.
    assert 0 < hour.energy_wh < 4 * 800 * settings.POLL_INTERVAL_S / 3600


def test_poll_fleet_once_prints_what_it_found(fleet_of: Callable[..., Fleet], capsys, settings) -> None:
    settings.POLL_TIMEOUT_MS = 300
    settings.POLL_RETRY_TIMEOUT_MS = 300
    settings.HEALTH_UNREACHABLE_SWEEPS = 1
    fleet = fleet_of(2)
    fleet.sim.set_fault(fleet.nodes[1].hostname, "refuse")

    call_command("poll_fleet", "--once")

    out = capsys.readouterr().out
    assert "Polled 2 nodes" in out and "1 answered, 1 unreachable; 8 GPU readings" in out
    assert f"Now unhealthy: {fleet.nodes[1].hostname}" in out
    assert Node.objects.get(pk=fleet.nodes[1].pk).state == NodeState.UNHEALTHY
    assert Node.objects.get(pk=fleet.nodes[0].pk).state == NodeState.AVAILABLE


def test_a_reading_that_fits_no_column_is_stored_as_unknown_instead_of_failing_the_sweep() -> None:
    from clusters.services.telemetry import _latest_row, pg_array

    row = _latest_row(
        7,
        {
            "utilization_pct": 10**6,
            "memory_used_bytes": -1,
            "memory_total_bytes": 80 * 2**30,
            "temperature_c": float("nan"),
            "power_draw_w": float("inf"),
            "power_limit_w": 700,
            "ecc_uncorrectable_volatile": True,
        },
    )

    assert row[:8] == (7, None, None, 80 * 2**30, None, None, 700.0, None)
    assert pg_array([1, None, 2.5]) == "{1,NULL,2.5}"


def _connections_to(port: int) -> set[int]:
    """The local ports of the established loopback connections to `port` (from /proc/net/tcp)."""
    found = set()
    with open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            local, remote, state = line.split()[1:4]
            if state == "01" and int(remote.split(":")[1], 16) == port:
                found.add(int(local.split(":")[1], 16))
    return found


def test_a_poll_reuses_the_connections_of_the_poll_before(fleet_of: Callable[..., Fleet]) -> None:
    fleet = fleet_of(3)
    port = int(fleet.base_url.rsplit(":", 1)[1].split("/")[0])

    fleet_poll()
    first = _connections_to(port)
    report = fleet_poll()

    assert report.answered == 3
    assert first and _connections_to(port) == first


def test_an_agent_restarted_since_the_last_poll_answers_at_the_first_ask(tmp_path: Path, db: None) -> None:
    fleet, stop = serve_fleet(2, tmp_path / "leases")
    port = int(fleet.base_url.rsplit(":", 1)[1].split("/")[0])
    fleet_poll()
    stop()
    _, stop = start_in_thread(fleet.sim, token=AGENT_TOKEN, port=port)
    try:
        report = fleet_poll()
    finally:
        stop()

    # The kept connections the stopped agent closed are seen closed before the sweep asks on them.
    assert (report.answered, report.retried, dict(report.errors)) == (2, 0, {})


def test_a_sweep_fails_many_nodes_in_a_few_statements_and_tells_a_lease_once(
    fleet_of: Callable[..., Fleet],
    acme: Organization,
    alice: User,
    settings,
    django_capture_on_commit_callbacks,
    django_assert_max_num_queries,
) -> None:
    settings.POLL_TIMEOUT_MS = settings.POLL_RETRY_TIMEOUT_MS = 300
    settings.POLL_MASS_MISS_MIN_NODES = 31  # every node of 30 missing would be a mass miss
    fleet = fleet_of(30)
    first, second = fleet.nodes[:2]
    across = lease_on(
        gpus_of(first) + gpus_of(second),
        organization=acme,
        booked_by=alice,
        start=timezone.now() - timedelta(minutes=5),
        state=LeaseState.ACTIVE,
    )
    for node in fleet.nodes:
        fleet.sim.set_fault(node.hostname, "refuse")

    # One at a time, failing 30 nodes took over 300 statements (a whole region missing: 29 s).
    with django_capture_on_commit_callbacks(execute=True), django_assert_max_num_queries(40):
        report = fleet_poll()

    assert len(report.nodes_made_unhealthy) == 30
    assert Node.objects.filter(pk__in=[n.pk for n in fleet.nodes], state=NodeState.UNHEALTHY).count() == 30
    assert HealthEvent.objects.filter(kind=HealthEventKind.UNREACHABLE, ended_at__isnull=True).count() == 30
    assert AuditEntry.objects.filter(action="node.health_failed").count() == 30
    assert {event.node_id for event in across.health_events.all()} == {first.pk, second.pk}
    assert Lease.objects.get(pk=across.pk).health_flagged is True
    told = [message for message in mail.outbox if "alice@acme.example" in message.to]
    assert len(told) == 1 and str(across.public_id) in told[0].body


def test_most_of_a_chunk_missing_at_once_fails_its_nodes_only_after_three_such_polls(
    fleet_of: Callable[..., Fleet], settings
) -> None:
    settings.POLL_TIMEOUT_MS = settings.POLL_RETRY_TIMEOUT_MS = 300
    settings.POLL_MASS_MISS_MIN_NODES = 20
    fleet = fleet_of(30)
    gone, answering = fleet.nodes[:20], fleet.nodes[20:]
    for node in gone:
        fleet.sim.set_fault(node.hostname, "refuse")

    held = [fleet_poll(), fleet_poll()]
    out = fleet_poll()

    # 20 of 30 (67 %) is the poller's likelier trouble: in placement for two polls, out at the third.
    assert [(r.mass_miss, r.nodes_made_unhealthy) for r in held] == [(True, []), (True, [])]
    assert out.mass_miss and sorted(out.nodes_made_unhealthy) == sorted(n.hostname for n in gone)
    assert Node.objects.filter(pk__in=[n.pk for n in answering], state=NodeState.AVAILABLE).count() == 10
    assert "3 polls in a row" in HealthEvent.objects.filter(node=gone[0]).get().detail


def test_a_few_nodes_missing_fail_at_once_however_large_their_share(
    fleet_of: Callable[..., Fleet], settings
) -> None:
    settings.POLL_TIMEOUT_MS = settings.POLL_RETRY_TIMEOUT_MS = 300
    fleet = fleet_of(3)
    for node in fleet.nodes:
        fleet.sim.set_fault(node.hostname, "refuse")

    report = fleet_poll()

    # Fewer than POLL_MASS_MISS_MIN_NODES (20): a rack's worth, not the poller's trouble.
    assert not report.mass_miss and len(report.nodes_made_unhealthy) == 3
