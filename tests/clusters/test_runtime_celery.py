"""A real Celery worker and beat (subprocesses) against Redis and PostgreSQL enforce leases on time.

Leases are booked and released through booking's services, with its limits shortened (whole
seconds). The worker uses the solo pool, so that SIGKILL kills the very process running the sweep.
Every wait has a deadline; these tests take a few seconds each.
"""

import signal
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from clusters.choices import LeaseState
from clusters.models import Lease
from clusters.services.booking import lease_release
from clusters.services.lifecycle import leases_enforce
from tests.clusters.helpers import Booking, Fleet, nodes_of, whole_second
from tests.clusters.workers import Celery, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


# The design sizes lease start and end lateness at p99 under 5 s past the scheduled instant.
LATE = timedelta(seconds=5)


def test_a_booked_lease_goes_active_and_ends_on_time_under_a_real_worker_and_beat(
    fleet_of: Callable[..., Fleet], booking: Booking, celery: Celery
) -> None:
    fleet = fleet_of(1)
    node = fleet.nodes[0]
    celery.start("worker")
    celery.start("beat")
    celery.wait_for_a_sweep()
    start = whole_second(timedelta(seconds=2))
    lease = booking.reserved(node, 2, start=start, end=start + timedelta(seconds=4))
    keys = fleet.keys_file(node, lease)

    try:
        wait_for(lambda: Lease.objects.get(pk=lease.pk).state == LeaseState.ACTIVE, 15, "the lease to start")
        active = Lease.objects.get(pk=lease.pk)
        assert start <= active.started_at < start + LATE
        assert SSH_KEY_PREFIX in keys.read_text()
        wait_for(lambda: Lease.objects.get(pk=lease.pk).state == LeaseState.ENDED, 15, "the lease to end")
    except AssertionError:
        print(celery.logs())
        raise
    ended = Lease.objects.get(pk=lease.pk)
    assert ended.end <= ended.ended_at < ended.end + LATE
    assert not keys.exists()
    assert AuditEntry.objects.filter(object_id=str(lease.public_id), action="lease.ended").count() == 1


def test_a_worker_killed_mid_sweep_leaves_each_lease_ended_exactly_once(
    fleet_of: Callable[..., Fleet], booking: Booking, celery: Celery
) -> None:
    fleet = fleet_of(4)
    slow = fleet.nodes[0]
    start = whole_second(timedelta(seconds=3))  # 32 bookings take a while on a busy machine
    booked = [booking.reserved(slow, 1, start=start, end=start + timedelta(hours=1)) for _ in range(32)]
    by_host = {node.hostname: node for node in fleet.nodes}
    leases = {lease: by_host[nodes_of(lease).pop()] for lease in booked}
    assert {node.hostname for node in leases.values()} == set(by_host)  # best fit filled all four nodes
    wait_for(lambda: timezone.now() >= start, 10, "the leases' start")
    assert leases_enforce().started == 32
    # The slow node holds the sweep's batch open for seconds after the others have revoked their keys.
    fleet.sim.set_fault(slow.hostname, "slow", seconds=4)
    for lease in booked:
        lease_release(user=booking.user, lease=lease)
    fast = [(lease, node) for lease, node in leases.items() if node != slow]

    def mid_sweep() -> bool:
        revoked = any(not fleet.keys_file(node, lease).exists() for lease, node in fast)
        return revoked and not Lease.objects.filter(state=LeaseState.ENDED).exists()

    first = celery.start("worker")
    celery.start("beat")
    try:
        wait_for(mid_sweep, 20, "a sweep to be half done")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=5)
        assert Lease.objects.filter(state=LeaseState.ENDED).count() == 0
        assert AuditEntry.objects.filter(action="lease.ended").count() == 0
        fleet.sim.clear_faults(slow.hostname)
        celery.start("worker")
        wait_for(lambda: Lease.objects.filter(state=LeaseState.ENDED).count() == 32, 20, "every lease to end")
    except AssertionError:
        print(celery.logs())
        raise
    ended = AuditEntry.objects.filter(action="lease.ended")
    assert ended.count() == 32 and ended.values("object_id").distinct().count() == 32
    assert not any(fleet.keys_file(node, lease).exists() for lease, node in leases.items())


SSH_KEY_PREFIX = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"
