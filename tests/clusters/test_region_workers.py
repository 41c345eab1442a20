"""With one region's workers down, the other regions' workers sweep on time, and after
RUNTIME_TAKEOVER_S they start the stalled region's due leases and poll its nodes too (real Celery
workers, one per region's queues, a shared one and beat, against a simulated fleet in three regions)."""

import re
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from accounts.models import AuditEntry
from clusters.choices import LeaseState
from clusters.models import GPU, Lease
from clusters.selectors.runtime import KEY_SERVED, KEY_SWEEP_LAST
from core.cache import redis_client
from tests.clusters.helpers import Booking, Fleet, whole_second
from tests.clusters.workers import Celery, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

UP, DOWN = ("us-tx-1", "us-va-1"), "us-wa-1"
TAKEOVER_S = 8
LATE = timedelta(seconds=5)


def served(queue: str) -> float | None:
    value = redis_client().hget(KEY_SERVED, queue)
    return None if value is None else float(value)


def test_one_region_s_workers_down_leave_the_others_on_time_and_its_leases_are_taken_over(
    fleet_of: Callable[..., Fleet], booking: Booking, celery: Celery
) -> None:
    nodes = {region: fleet_of(1, region=region).nodes[0] for region in (*UP, DOWN)}
    celery.env.update(RUNTIME_TAKEOVER_S=str(TAKEOVER_S), POLL_INTERVAL_S="2")
    for region in UP:
        celery.start("worker", queues=[f"poll.{region}", f"leases.{region}", "dispatch"], name=region)
    celery.start("worker", queues=["celery", "dispatch"], name="shared")
    celery.start("beat")
    try:
        wait_for(lambda: all(served(f"leases.{region}") for region in UP), 90, "both regions' first sweeps")
        first_seen = served(f"leases.{DOWN}")  # the timeout of a queue never served runs from here
        start = whole_second(timedelta(seconds=2))
        leases = {
            region: booking.reserved(node, 2, start=start, end=start + timedelta(minutes=5))
            for region, node in nodes.items()
        }

        def all_active() -> bool:
            return (
                Lease.objects.filter(pk__in=[lease.pk for lease in leases.values()], state="active").count()
                == 3
            )

        wait_for(all_active, TAKEOVER_S + 30, "every region's lease to start")
    except AssertionError:
        print(celery.logs())
        raise
    started = {region: Lease.objects.get(pk=lease.pk).started_at for region, lease in leases.items()}
    for region in UP:
        assert start <= started[region] < start + LATE, f"{region} was late"
        duration, lateness, finished = map(
            float, redis_client().hget(KEY_SWEEP_LAST, f"leases|{region}").split()
        )
        assert lateness < 1.0 and time.time() - finished < 5
    assert first_seen is not None and started[DOWN].timestamp() >= first_seen + TAKEOVER_S
    assert served(f"leases.{DOWN}") == first_seen  # its own queue still unserved: others did the work
    # The sweep logs what it did after its transactions and its figures: the lease can be active
    # first (a busy machine's CI run read the log in between).
    wait_for(
        lambda: bool(re.findall(rf"leases of {DOWN}: 1 started", celery.worker_logs())),
        10,
        f"the helper's log of starting {DOWN}'s lease",
    )
    helpers = re.findall(rf"leases of {DOWN}: 1 started", celery.worker_logs())
    assert len(helpers) == 1
    for lease in leases.values():
        assert AuditEntry.objects.filter(object_id=str(lease.public_id), action="lease.active").count() == 1
        assert Lease.objects.get(pk=lease.pk).state == LeaseState.ACTIVE
    wait_for(
        lambda: GPU.objects.filter(node=nodes[DOWN], read_at__isnull=False).count() == 8,
        TAKEOVER_S + 10,
        "the stalled region's node to be polled by another region's worker",
    )
