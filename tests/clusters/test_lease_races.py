"""Lease transitions act once when requests and sweepers race: threads with their own connections."""

from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEntry, Organization, User
from clusters.choices import LeaseState
from clusters.models import Allocation, Lease
from clusters.services.lifecycle import leases_enforce
from tests.clusters.helpers import Fleet, build_fleet, gpus_of, lease_on, make_active, reserved
from tests.helpers import api_client_for
from tests.races import errors_of, race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_six_cancels_of_one_lease_at_once_cancel_it_once(alice: User) -> None:
    build_fleet()
    lease = api_client_for(alice).post("/api/v1/leases/", reserved(2), format="json").json()
    url = f"/api/v1/leases/{lease['id']}/cancel/"
    clients = [api_client_for(alice) for _ in range(6)]
    responses = race([lambda c=c: c.post(url) for c in clients])
    assert Counter(response.status_code for response in responses) == {200: 1, 409: 5}
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"invalid_state"}
    assert Lease.objects.get(public_id=lease["id"]).state == LeaseState.CANCELLED
    assert not Allocation.objects.filter(lease__public_id=lease["id"], is_live=True).exists()
    assert AuditEntry.objects.filter(action="lease.cancel", object_id=lease["id"]).count() == 1


def test_four_releases_of_one_running_lease_at_once_release_it_once(alice: User) -> None:
    build_fleet()
    lease = api_client_for(alice).post("/api/v1/leases/", reserved(2, hours=4), format="json").json()
    make_active(lease["id"])
    url = f"/api/v1/leases/{lease['id']}/release/"
    clients = [api_client_for(alice) for _ in range(4)]
    responses = race([lambda c=c: c.post(url) for c in clients])
    assert Counter(response.status_code for response in responses) == {200: 1, 409: 3}
    row = Lease.objects.get(public_id=lease["id"])
    assert row.state == LeaseState.ACTIVE and row.end <= timezone.now()
    assert {a.period.upper for a in row.allocations.filter(is_live=True)} == {row.end}
    assert AuditEntry.objects.filter(action="lease.release", object_id=lease["id"]).count() == 1


def test_three_sweepers_at_once_start_each_lease_exactly_once(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User, settings
) -> None:
    settings.LEASE_SWEEP_BATCH = 4
    fleet = fleet_of(2)
    start = timezone.now() - timedelta(seconds=30)
    leases = [
        lease_on([gpu], organization=acme, booked_by=alice, start=start, end=start + timedelta(hours=1))
        for node in fleet.nodes
        for gpu in gpus_of(node)
    ]
    reports = race([leases_enforce] * 3)
    assert errors_of(reports) == []
    assert sum(report.started for report in reports) == len(leases) == 16
    assert Lease.objects.filter(state=LeaseState.ACTIVE, started_at__isnull=False).count() == 16
    started = AuditEntry.objects.filter(action="lease.active")
    assert started.count() == 16 and started.values("object_id").distinct().count() == 16
    assert all(fleet.keys_file(lease.allocations.get().node, lease).exists() for lease in leases)
