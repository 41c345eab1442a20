"""A node failing while its lease is being extended: both finish, neither waits on the other forever.

Extending locks the lease, then its nodes; a node's failure must take its locks in the same order
(the leases it flags first, then the node), or the two meet and PostgreSQL aborts one of them (the
scaled soak's 503 on extend, "deadlock detected")."""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from clusters.choices import HealthEventKind, LeaseState, NodeState
from clusters.models import Lease, Node
from clusters.services import booking
from clusters.services.booking import lease_extend
from clusters.services.health import node_health_fail
from tests.clusters.helpers import gpus_of, lease_on
from tests.races import errors_of, race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_node_failing_while_its_lease_is_extended_deadlocks_neither(
    monkeypatch, fleet, acme, alice
) -> None:
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=1)
    node = fleet.nodes[0]
    lease = lease_on(
        gpus_of(node),
        organization=acme,
        booked_by=alice,
        start=start,
        end=start + timedelta(hours=3),
        state=LeaseState.ACTIVE,
    )
    # Between the extend's lease lock and its node locks, the failure begins.
    lease_locked = threading.Event()
    lock_organization = booking._lock_organization

    def held_between(organization):
        locked = lock_organization(organization)
        lease_locked.set()
        time.sleep(1.5)  # longer than PostgreSQL's deadlock_timeout (1 s): a deadlock would be found
        return locked

    monkeypatch.setattr(booking, "_lock_organization", held_between)

    def fail():
        assert lease_locked.wait(timeout=10)
        gpu = node.gpus.get(index=0)
        return node_health_fail(
            node_id=node.pk,
            problems={(HealthEventKind.XID, gpu.pk): "GPU 0 reported XID 79."},
            now=timezone.now(),
        )

    new_end = start + timedelta(hours=4)
    results = race([lambda: lease_extend(user=alice, lease=lease, end=new_end), fail])

    assert errors_of(results) == []
    fresh = Lease.objects.get(pk=lease.pk)
    assert fresh.end == new_end and fresh.health_flagged
    assert Node.objects.get(pk=node.pk).state == NodeState.UNHEALTHY
