"""A Celery task's log lines and audit rows carry the task's id, as a request's carry the request's."""

import time
from collections.abc import Callable

from accounts.models import AuditEntry, Organization, User
from clusters.choices import LeaseState
from clusters.tasks import leases_enforce
from core.request_id import current_request_id
from tests.clusters.helpers import Fleet, gpus_of, lease_on


def test_a_lease_sweep_writes_its_task_id_on_the_audit_rows_of_the_leases_it_starts(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User
) -> None:
    node = fleet_of(1).nodes[0]
    lease = lease_on(gpus_of(node, [0, 1]), organization=acme, booked_by=alice)

    region = node.cluster.region.code
    result = leases_enforce.apply(kwargs={"region": region, "queue": f"leases.{region}", "due": time.time()})

    lease.refresh_from_db()
    assert lease.state == LeaseState.ACTIVE
    audit = AuditEntry.objects.get(object_id=str(lease.public_id), action="lease.active")
    assert audit.request_id == result.id and len(result.id) == 36
    assert current_request_id() is None
