"""Lease enforcement over real HTTP against the simulated agent: start, end, fail, clean up, warn."""

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from accounts.models import AuditEntry, Organization, User
from clusters.choices import HealthEventKind, LeaseKind, LeaseState, NodeState
from clusters.models import GPU, Allocation, Lease, LeaseNotice, Node
from clusters.services.health import node_health_fail, node_undrain
from clusters.services.lifecycle import gpus_cleanup_check, leases_end_due, leases_enforce
from tests.clusters.helpers import SSH_KEY, Fleet, gpus_of, lease_on
from tests.races import errors_of, held_open, race


def audits(lease: Lease, action: str) -> int:
    return AuditEntry.objects.filter(object_id=str(lease.public_id), action=action).count()


def test_a_due_lease_starts_and_its_keys_are_installed_on_its_node(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User
) -> None:
    fleet = fleet_of(2)
    node = fleet.nodes[1]
    lease = lease_on(gpus_of(node, [4, 5]), organization=acme, booked_by=alice)
    later = lease_on(
        gpus_of(node, [6]), organization=acme, booked_by=alice, start=timezone.now() + timedelta(hours=1)
    )

    report = leases_enforce()

    lease.refresh_from_db()
    assert report.started == 1 and lease.state == LeaseState.ACTIVE and lease.started_at is not None
    assert fleet.keys_file(node, lease).read_text().strip().startswith(SSH_KEY.rsplit(" ", 1)[0])
    assert not fleet.keys_file(node, later).exists()
    assert Lease.objects.get(pk=later.pk).state == LeaseState.SCHEDULED
    assert audits(lease, "lease.active") == 1


def test_a_lease_whose_end_has_come_ends_and_its_keys_are_revoked(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User
) -> None:
    fleet = fleet_of(1)
    node = fleet.nodes[0]
    start = timezone.now() - timedelta(seconds=30)
    lease = lease_on(gpus_of(node, [0, 1]), organization=acme, booked_by=alice, start=start)
    leases_enforce(now=start)
    assert fleet.keys_file(node, lease).exists()
    Lease.objects.filter(pk=lease.pk).update(end=timezone.now())

    report = leases_enforce()

    lease.refresh_from_db()
    assert report.ended == 1 and lease.state == LeaseState.ENDED and lease.ended_at is not None
    assert not fleet.keys_file(node, lease).exists()
    assert GPU.objects.filter(node=node, needs_cleanup=True).count() == 0
    assert audits(lease, "lease.ended") == 1
    assert leases_enforce().ended == 0 and audits(lease, "lease.ended") == 1


def test_a_node_that_refuses_is_retried_and_the_lease_starts_when_it_answers(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User, settings
) -> None:
    settings.LEASE_AGENT_TIMEOUT_MS = 300
    fleet = fleet_of(2)
    a, b = fleet.nodes
    lease = lease_on([*gpus_of(a), *gpus_of(b)], organization=acme, booked_by=alice)
    fleet.sim.set_fault(b.hostname, "refuse")

    first = leases_enforce()
    lease.refresh_from_db()
    assert (first.started, first.waiting, lease.state) == (0, 1, LeaseState.SCHEDULED)
    assert b.hostname in lease.state_reason
    fleet.sim.clear_faults(b.hostname)
    second = leases_enforce()

    lease.refresh_from_db()
    assert second.started == 1 and lease.state == LeaseState.ACTIVE
    assert fleet.keys_file(a, lease).exists() and fleet.keys_file(b, lease).exists()


def test_a_lease_that_cannot_start_in_time_fails_with_nothing_billed(
    fleet_of: Callable[..., Fleet],
    acme: Organization,
    alice: User,
    settings,
    django_capture_on_commit_callbacks,
) -> None:
    settings.LEASE_AGENT_TIMEOUT_MS = 300
    settings.LEASE_START_TIMEOUT_S = 60
    fleet = fleet_of(2)
    a, b = fleet.nodes
    start = timezone.now() - timedelta(seconds=61)
    lease = lease_on([*gpus_of(a), *gpus_of(b)], organization=acme, booked_by=alice, start=start)
    fleet.sim.set_fault(b.hostname, "refuse")

    with django_capture_on_commit_callbacks(execute=True):
        report = leases_enforce()

    lease.refresh_from_db()
    assert report.failed == 1 and lease.state == LeaseState.FAILED
    assert "Could not start" in lease.state_reason and b.hostname in lease.state_reason
    assert Allocation.objects.filter(lease=lease, is_live=True).count() == 0
    assert not fleet.keys_file(a, lease).exists()
    assert GPU.objects.filter(node=b, needs_cleanup=True).count() == 8
    assert GPU.objects.filter(node=a, needs_cleanup=True).count() == 0
    assert [m.to for m in mail.outbox] == [["alice@acme.example"]]
    assert audits(lease, "lease.failed") == 1


def test_gpus_of_a_node_unreachable_at_the_end_wait_for_cleanup_until_it_answers(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User, settings
) -> None:
    settings.LEASE_AGENT_TIMEOUT_MS = 300
    fleet = fleet_of(1)
    node = fleet.nodes[0]
    start = timezone.now() - timedelta(minutes=1)
    lease = lease_on(gpus_of(node, [2, 3]), organization=acme, booked_by=alice, start=start)
    leases_enforce(now=start)
    Lease.objects.filter(pk=lease.pk).update(end=timezone.now())
    fleet.sim.set_fault(node.hostname, "refuse")

    assert leases_end_due(now=timezone.now()) == 1
    assert set(GPU.objects.filter(needs_cleanup=True).values_list("index", flat=True)) == {2, 3}
    assert gpus_cleanup_check() == 0
    fleet.sim.clear_faults(node.hostname)
    assert gpus_cleanup_check() == 2

    assert GPU.objects.filter(needs_cleanup=True).count() == 0
    assert not fleet.keys_file(node, lease).exists()
    assert Lease.objects.get(pk=lease.pk).state == LeaseState.ENDED


def test_owners_are_warned_60_and_10_minutes_before_a_reserved_lease_ends_once_each(
    fleet_of: Callable[..., Fleet],
    acme: Organization,
    alice: User,
    bob: User,
    django_capture_on_commit_callbacks,
) -> None:
    node = fleet_of(1).nodes[0]
    now = timezone.now()
    start = now - timedelta(hours=1)
    lease = lease_on(
        gpus_of(node, [0]),
        organization=acme,
        booked_by=bob,
        start=start,
        end=now + timedelta(minutes=50),
        state=LeaseState.ACTIVE,
    )
    # Open-ended: nothing to warn of (an on-demand lease "until" is warned: test_on_demand_until.py).
    on_demand = lease_on(
        gpus_of(node, [1]),
        organization=acme,
        booked_by=bob,
        start=start,
        state=LeaseState.ACTIVE,
        kind=LeaseKind.ON_DEMAND,
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert leases_enforce(now=now).notices == 1
        assert leases_enforce(now=now + timedelta(seconds=2)).notices == 0
        assert leases_enforce(now=now + timedelta(minutes=41)).notices == 1
        assert leases_enforce(now=now + timedelta(minutes=42)).notices == 0

    kinds = list(LeaseNotice.objects.filter(lease=lease).order_by("sent_at").values_list("kind", flat=True))
    assert kinds == ["ending_60", "ending_10"]
    assert LeaseNotice.objects.filter(lease=on_demand).count() == 0
    assert [m.to for m in mail.outbox] == [["alice@acme.example"], ["alice@acme.example"]]
    assert "ends in 60 minutes" in mail.outbox[0].subject and "ends in 10 minutes" in mail.outbox[1].subject


def test_enforce_leases_once_prints_what_it_did(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User, capsys
) -> None:
    fleet = fleet_of(1)
    node = fleet.nodes[0]
    lease = lease_on(gpus_of(node), organization=acme, booked_by=alice)

    call_command("enforce_leases", "--once")

    assert "Leases: 1 started, 0 ended, 0 failed" in capsys.readouterr().out
    assert Lease.objects.get(pk=lease.pk).state == LeaseState.ACTIVE
    assert fleet.keys_file(node, lease).exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_sweepers_at_once_end_each_lease_exactly_once(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User, settings
) -> None:
    settings.LEASE_SWEEP_BATCH = 5
    fleet = fleet_of(4)
    start = timezone.now() - timedelta(hours=1)
    leases = [
        lease_on(
            [gpu],
            organization=acme,
            booked_by=alice,
            start=start,
            end=timezone.now(),
            state=LeaseState.ACTIVE,
        )
        for node in fleet.nodes
        for gpu in gpus_of(node)
    ]
    counts = race([lambda: leases_end_due(now=timezone.now())] * 3)

    assert errors_of(counts) == []
    assert sum(counts) == len(leases) == 32
    assert Lease.objects.filter(state=LeaseState.ENDED).count() == 32
    ended = AuditEntry.objects.filter(action="lease.ended")
    assert ended.count() == 32 and ended.values("object_id").distinct().count() == 32


def test_started_at_is_when_the_keys_went_in_not_when_the_sweep_began(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User
) -> None:
    node = fleet_of(1).nodes[0]
    began = timezone.now() - timedelta(seconds=30)
    lease = lease_on(gpus_of(node, [0]), organization=acme, booked_by=alice, start=began)

    leases_enforce(now=began)

    lease.refresh_from_db()
    assert lease.state == LeaseState.ACTIVE and lease.started_at > began + timedelta(seconds=29)


def test_a_lease_that_starts_late_is_billed_from_when_its_keys_went_in(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User
) -> None:
    fleet = fleet_of(1)
    node = fleet.nodes[0]
    booked_start = timezone.now().replace(microsecond=0) - timedelta(seconds=120)
    late = lease_on(gpus_of(node, [0, 1]), organization=acme, booked_by=alice, start=booked_start)
    on_time = lease_on(gpus_of(node, [2]), organization=acme, booked_by=alice, start=timezone.now())

    leases_enforce()

    late.refresh_from_db()
    periods = list(Allocation.objects.filter(lease=late).values_list("period", flat=True))
    assert late.state == LeaseState.ACTIVE and late.start == booked_start
    assert len(periods) == 2 and all(period.lower == late.started_at for period in periods)
    kept = Allocation.objects.get(lease=on_time).period.lower
    assert kept == Lease.objects.get(pk=on_time.pk).start


def test_a_due_lease_on_an_unhealthy_node_waits_with_no_keys_in_until_the_node_is_back(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User, stella: User
) -> None:
    fleet = fleet_of(1)
    node = fleet.nodes[0]
    lease = lease_on(gpus_of(node, [0]), organization=acme, booked_by=alice)
    Node.objects.filter(pk=node.pk).update(state=NodeState.UNHEALTHY)

    report = leases_enforce()

    assert report.started == 0 and Lease.objects.get(pk=lease.pk).state == LeaseState.SCHEDULED
    assert not fleet.keys_file(node, lease).exists()
    node_undrain(node=Node.objects.get(pk=node.pk), actor=stella, reason="fixed")
    assert leases_enforce().started == 1 and fleet.keys_file(node, lease).exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_node_failure_committing_after_the_start_guard_read_the_node_holds_the_lease_back(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User
) -> None:
    fleet = fleet_of(1)
    node = fleet.nodes[0]
    lease = lease_on(gpus_of(node, [0]), organization=acme, booked_by=alice)
    # The poll that fails the node read it before the lease's start: the lease is not among the ones
    # it flags, so nothing of the failure waits for the lease the sweep holds.
    polled_at = lease.start - timedelta(seconds=2)
    problem: dict[tuple[str, int | None], str] = {
        (HealthEventKind.UNREACHABLE, None): "No usable answer for 1 poll."
    }

    def fail_the_node() -> None:
        node_health_fail(node_id=node.pk, problems=problem, now=polled_at)

    # The failure is written (audited, node unhealthy) but not committed while the sweep runs.
    with held_open(fail_the_node, commit_after=3.0):
        report = leases_enforce()

    failed_at = AuditEntry.objects.get(object_id=str(node.public_id), action="node.health_failed").at
    lease.refresh_from_db()
    assert Node.objects.get(pk=node.pk).state == NodeState.UNHEALTHY
    assert report.started == 0 and lease.state == LeaseState.SCHEDULED, (failed_at, lease.started_at)
    assert leases_enforce().started == 0 and audits(lease, "lease.active") == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_node_failing_while_the_sweep_waits_for_its_agent_holds_the_lease_back(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User
) -> None:
    fleet = fleet_of(1)
    node = fleet.nodes[0]
    lease = lease_on(gpus_of(node, [0]), organization=acme, booked_by=alice)
    fleet.sim.set_fault(node.hostname, "slow", seconds=1.0, answers=1)

    def fail_the_node() -> int:
        time.sleep(0.4)  # the sweep has read the node (available) and waits for the agent's answer
        return Node.objects.filter(pk=node.pk).update(state=NodeState.UNHEALTHY)

    results = race([leases_enforce, fail_the_node])

    assert errors_of(results) == [] and results[1] == 1
    assert results[0].started == 0
    assert Lease.objects.get(pk=lease.pk).state == LeaseState.SCHEDULED
    assert audits(lease, "lease.active") == 0
