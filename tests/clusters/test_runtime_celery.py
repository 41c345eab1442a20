"""A real Celery worker and beat (subprocesses) against Redis and PostgreSQL enforce leases on time.

Leases are booked and released through booking's services, with its limits shortened (whole
seconds). The worker uses the solo pool, so that SIGKILL kills the very process running the sweep.
Every wait has a deadline; these tests take a few seconds each.
"""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.utils import timezone

from accounts.models import AuditEntry
from clusters.choices import LeaseState
from clusters.models import Lease
from clusters.services.booking import lease_release
from clusters.services.lifecycle import leases_enforce
from tests.clusters.helpers import Booking, Fleet, nodes_of, whole_second
from tests.live import worker_environment

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


class Celery:
    """Starts and stops worker and beat processes pointed at the test database."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {
            **worker_environment(),
            "LEASE_SWEEP_INTERVAL_S": "1",
            "POLL_INTERVAL_S": "3600",
            "LEASE_CLEANUP_INTERVAL_S": "3600",
            "EMAIL_URL": "dummy://",
            "PYTHONPATH": os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p),
        }

    def start(self, role: str) -> subprocess.Popen[bytes]:
        args = {
            "worker": ["worker", "--pool=solo", "--without-mingle", "--without-gossip", "--loglevel=INFO"],
            "beat": ["beat", f"--schedule={self.tmp_path / 'beat-schedule'}", "--loglevel=INFO"],
        }[role]
        log = open(self.tmp_path / f"{role}-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "voltpark", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def wait_for_a_sweep(self) -> None:
        """Until the worker has run a lease sweep: started on a busy machine, it may take seconds."""

        def swept() -> bool:
            logs = "".join(path.read_text(errors="replace") for path in self.tmp_path.glob("worker-*.log"))
            return re.search(r"leases_enforce\[[^]]+\] succeeded", logs) is not None

        wait_for(swept, 60, "the worker's first lease sweep")

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in self.tmp_path.glob("*.log"))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@pytest.fixture
def celery(tmp_path: Path) -> Iterator[Celery]:
    redis.Redis.from_url(django_settings.REDIS_URL).flushdb()
    runner = Celery(tmp_path)
    try:
        yield runner
    finally:
        runner.stop()


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
