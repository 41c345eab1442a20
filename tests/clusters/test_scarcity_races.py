"""Scarcity under real concurrency: threads with their own connections, released together.

Two workers dispatching one queue, a release racing a queued request and a direct booking, one
request booked by two workers at once, an offering booked by two organizations at once, two
sweepers moving the leases of a failed node. After each,
the SQL overlap check counts 0 and every request is booked at most once.
"""

from collections import Counter
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from clusters.choices import LeaseKind, LeaseRequestState, LeaseState, NodeState
from clusters.models import Lease, LeaseRequest, Node
from clusters.services.booking import lease_book, lease_release
from clusters.services.lease_requests import lease_request_book, lease_request_create, lease_requests_dispatch
from clusters.services.refusals import NoCapacity
from clusters.services.remediation import leases_remediate
from tests.clusters.helpers import build_fleet, fill, gpus_of, later, lease_on, overlapping_allocations
from tests.clusters.test_booking_races import members
from tests.helpers import api_client_for
from tests.races import errors_of, race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def booked_once() -> bool:
    """No request has two leases and no lease serves two requests (read in SQL)."""
    rows = list(LeaseRequest.objects.filter(state=LeaseRequestState.BOOKED).values_list("pk", "lease_id"))
    leases = [lease for _, lease in rows]
    return None not in leases and len(set(leases)) == len(leases)


def test_two_workers_dispatching_one_queue_book_each_request_at_most_once() -> None:
    fleet = build_fleet(clusters=2, nodes_per_cluster=2)  # 32 GPUs
    users = members(12)
    requests = [
        lease_request_create(
            user=u, organization=u.memberships.get().organization, gpus=g, kind=LeaseKind.ON_DEMAND
        )
        for u, g in zip(users, [8, 4, 4, 2, 2, 1, 1, 8, 8, 4, 2, 1], strict=True)
    ]
    results = race([lease_requests_dispatch, lease_requests_dispatch])
    assert errors_of(results) == []
    booked = LeaseRequest.objects.filter(state=LeaseRequestState.BOOKED)
    assert sum(r.gpus for r in booked) <= 32 and booked.count() >= 5
    assert Lease.objects.count() == booked.count() and booked_once()
    assert overlapping_allocations() == 0
    assert fleet.region.leases.count() == booked.count() <= len(requests)


def test_workers_booking_one_regions_queue_together_and_alone_book_each_request_once() -> None:
    """Requests for a named region are booked together (one statement per run) by the dispatcher;
    two dispatchers, a worker booking the same requests one by one, and a direct booking race."""
    fleet = build_fleet(clusters=2, nodes_per_cluster=2)  # 32 GPUs
    users = members(13)
    direct = users.pop()
    requests = [
        lease_request_create(
            user=u,
            organization=u.memberships.get().organization,
            gpus=g,
            kind=LeaseKind.ON_DEMAND,
            region=fleet.region,
        )
        for u, g in zip(users, [1, 2, 1, 4, 1, 2, 8, 1, 1, 4, 2, 1], strict=True)  # 28 GPUs
    ]

    def one_by_one():
        return [lease_request_book(request=r, region=fleet.region) for r in reversed(requests)]

    def book_directly():
        organization = direct.memberships.get().organization
        return lease_book(
            user=direct, organization=organization, region=fleet.region, gpus=8, kind="on_demand"
        )

    results = race([lease_requests_dispatch, lease_requests_dispatch, one_by_one, book_directly])
    assert all(isinstance(e, NoCapacity) for e in errors_of(results)), results
    booked = LeaseRequest.objects.filter(state=LeaseRequestState.BOOKED)
    assert booked_once() and overlapping_allocations() == 0
    assert Lease.objects.count() == booked.count() + (0 if errors_of(results) else 1)
    assert sum(lease.gpus for lease in Lease.objects.all()) <= 32
    assert booked.count() >= 6  # some of them fit whatever the order
    audits = Counter(
        AuditEntry.objects.filter(action="lease_request.book").values_list("object_id", flat=True)
    )
    assert audits == Counter(str(r.public_id) for r in booked)


def test_one_request_booked_by_two_workers_at_once_gets_one_lease() -> None:
    fleet = build_fleet(clusters=1, nodes_per_cluster=2)
    [user] = members(1)
    request = lease_request_create(
        user=user, organization=user.memberships.get().organization, gpus=8, kind="on_demand"
    )
    results = race([lambda: lease_request_book(request=request, region=fleet.region) for _ in range(4)])
    assert errors_of(results) == []
    assert sum(result is not None for result in results) == 1
    assert Lease.objects.count() == 1 and booked_once() and overlapping_allocations() == 0


def test_a_release_racing_a_queued_request_and_a_direct_booking_double_books_nothing() -> None:
    fleet = build_fleet(clusters=1, nodes_per_cluster=1)  # 8 GPUs
    holder, waiter, direct = members(3)
    held = lease_on(
        gpus_of(fleet.nodes[0]),
        organization=holder.memberships.get().organization,
        booked_by=holder,
        start=timezone.now() - timedelta(hours=1),
        end=None,
        kind=LeaseKind.ON_DEMAND,
        state=LeaseState.ACTIVE,
    )
    request = lease_request_create(
        user=waiter, organization=waiter.memberships.get().organization, gpus=8, kind="on_demand"
    )

    def release_then_dispatch():
        lease_release(user=holder, lease=held)
        return lease_requests_dispatch()

    def book_directly():
        return lease_book(
            user=direct,
            organization=direct.memberships.get().organization,
            region=fleet.region,
            gpus=8,
            kind="on_demand",
        )

    results = race([release_then_dispatch, book_directly, lease_requests_dispatch])
    assert all(isinstance(e, NoCapacity) for e in errors_of(results)), results  # whoever lost
    assert overlapping_allocations() == 0 and booked_once()
    live = Lease.objects.filter(state__in=["scheduled", "active"]).exclude(pk=held.pk)
    state = LeaseRequest.objects.get(pk=request.pk).state
    assert live.count() == 1  # the queued request or the direct booking, never both
    assert (state == LeaseRequestState.BOOKED) == (live.get().organization == request.organization)


def test_an_offering_booked_by_two_organizations_at_once_goes_to_one() -> None:
    fleet = build_fleet(clusters=1, nodes_per_cluster=2)
    alice, charlie = members(2)
    fill(fleet.nodes, organization=alice.memberships.get().organization, booked_by=alice, until=later(3))
    clients = [api_client_for(user) for user in (alice, charlie)]
    offer = clients[0].get("/api/v1/capacity/offerings/", {"gpus": 16, "hours": 2}).json()["offerings"][0]
    body = {
        "region": offer["region"],
        "gpus": 16,
        "kind": "reserved",
        "start": offer["start"],
        "end": offer["end"],
    }
    responses = race([lambda c=c: c.post("/api/v1/leases/", body, format="json") for c in clients])
    assert Counter(r.status_code for r in responses) == {201: 1, 409: 1}
    [refused] = [r.json() for r in responses if r.status_code == 409]
    assert refused["code"] == "no_capacity" and refused["offerings"][0]["start"] >= offer["end"]
    assert overlapping_allocations() == 0
    assert Lease.objects.filter(start=datetime.fromisoformat(offer["start"])).count() == 1


def test_two_sweepers_remediating_at_once_move_each_lease_once() -> None:
    fleet = build_fleet(clusters=2, nodes_per_cluster=2)
    [user] = members(1)
    failed = fleet.nodes[0]
    leases = [
        lease_on(
            gpus_of(failed, [2 * i, 2 * i + 1]),
            organization=user.memberships.get().organization,
            booked_by=user,
            start=later(i),
            end=later(i + 2),
        )
        for i in range(4)
    ]
    Node.objects.filter(pk=failed.pk).update(state=NodeState.UNHEALTHY)
    results = race([leases_remediate, leases_remediate])
    assert errors_of(results) == []
    assert sorted(sum((r.replaced for r in results), [])) == sorted(str(lease.public_id) for lease in leases)
    for lease in leases:
        live = lease.allocations.filter(is_live=True)
        assert live.count() == 2 and not live.filter(node=failed).exists()
    assert AuditEntry.objects.filter(action="lease.re_placed").count() == 4
    assert overlapping_allocations() == 0
