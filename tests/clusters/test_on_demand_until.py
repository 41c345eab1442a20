"""On-demand "until": when no GPUs are free from now on for good, only until the next reservations
on them, the 409 offers on-demand until that instant; booked with that end, the lease ends then,
with the usual notices, and is billed as on-demand (no commitment)."""

from datetime import timedelta

from django.utils import timezone

from billing.models import LedgerEntry
from clusters.choices import LeaseKind, LeaseNoticeKind, LeaseState
from clusters.models import Lease, LeaseNotice
from clusters.services.lifecycle import leases_notify_ending
from tests.clusters.helpers import gpus_of, lease_on


def at(hours: float):
    """A whole minute `hours` from now."""
    return timezone.now().replace(second=0, microsecond=0) + timedelta(hours=hours)


def reserve_every_node_from(fleet, acme, alice, first_hours: int = 3) -> None:
    """Each node reserved for two hours from `first_hours` + its position hours on: nothing is free
    for good, node 7 (tx1-c02-n004) stays free the longest."""
    for i, node in enumerate(fleet.nodes):
        start = at(first_hours + i)
        lease_on(
            gpus_of(node), organization=acme, booked_by=alice, start=start, end=start + timedelta(hours=2)
        )


def test_a_refused_on_demand_booking_is_offered_on_demand_until_the_next_reservation(
    api_as, alice, acme, fleet, charlie
) -> None:
    reserve_every_node_from(fleet, acme, alice)
    client = api_as(charlie)
    refused = client.post("/api/v1/leases/", {"region": "us-tx-1", "gpus": 8, "kind": "on_demand"})
    assert refused.status_code == 409 and refused.json()["code"] == "no_capacity"
    assert refused.json()["on_demand_until"] == [{"region": "us-tx-1", "end": at(10).isoformat()}]
    assert f"until {at(10):%Y-%m-%d %H:%M} UTC" in refused.json()["detail"]
    booked = client.post(
        "/api/v1/leases/", {"region": "us-tx-1", "gpus": 8, "kind": "on_demand", "end": at(10).isoformat()}
    )
    assert booked.status_code == 201, booked.json()
    lease = Lease.objects.get(public_id=booked.json()["id"])
    assert lease.kind == LeaseKind.ON_DEMAND and lease.end == at(10)
    assert [n["hostname"] for n in booked.json()["nodes"]] == ["tx1-c02-n004"]
    assert not LedgerEntry.objects.filter(lease=lease).exists()  # paid as it runs, not committed


def test_smaller_leases_run_until_the_latest_reservation_among_enough_gpus(
    api_as, alice, acme, fleet, charlie
) -> None:
    reserve_every_node_from(fleet, acme, alice)
    lease_on(
        gpus_of(fleet.nodes[7], [0, 1, 2, 3]), organization=acme, booked_by=alice, start=at(1), end=at(2)
    )
    refused = api_as(charlie).post("/api/v1/leases/", {"region": "us-tx-1", "gpus": 8, "kind": "on_demand"})
    # Node 7's first four GPUs are booked from one hour on: eight GPUs run longest on node 6.
    assert refused.json()["on_demand_until"] == [{"region": "us-tx-1", "end": at(9).isoformat()}]
    four = api_as(charlie).post("/api/v1/leases/", {"region": "us-tx-1", "gpus": 4, "kind": "on_demand"})
    assert four.json()["on_demand_until"] == [{"region": "us-tx-1", "end": at(10).isoformat()}]


def test_whole_nodes_of_one_cluster_run_until_their_earliest_reservation(
    api_as, alice, acme, fleet, charlie, globex
) -> None:
    globex.gpu_quota = 1000
    globex.save(update_fields=["gpu_quota"])
    reserve_every_node_from(fleet, acme, alice)
    refused = api_as(charlie).post("/api/v1/leases/", {"region": "us-tx-1", "gpus": 16, "kind": "on_demand"})
    # Two whole nodes of tx1-c02: n003 (reserved from 9 h) and n004 (from 10 h) hold until 9 h.
    assert refused.json()["on_demand_until"] == [{"region": "us-tx-1", "end": at(9).isoformat()}]


def test_nothing_is_offered_when_what_is_free_is_shorter_than_a_lease(
    api_as, alice, acme, fleet, charlie
) -> None:
    for node in fleet.nodes:
        start = at(0.5)
        lease_on(
            gpus_of(node), organization=acme, booked_by=alice, start=start, end=start + timedelta(hours=2)
        )
    refused = api_as(charlie).post("/api/v1/leases/", {"region": "us-tx-1", "gpus": 1, "kind": "on_demand"})
    assert refused.status_code == 409 and refused.json()["on_demand_until"] == []


def test_a_bad_end_for_on_demand_is_a_400_naming_it(api_as, charlie, fleet) -> None:
    for end, message in (
        (at(3) + timedelta(seconds=30), "whole minutes"),
        (at(0.5), "at least 1 hour"),
        (at(24 * 91), "at most 90 days"),
    ):
        response = api_as(charlie).post(
            "/api/v1/leases/", {"region": "us-tx-1", "gpus": 1, "kind": "on_demand", "end": end.isoformat()}
        )
        assert response.status_code == 400 and message in str(response.json()["fields"]["end"]), (
            response.json()
        )
    assert not Lease.objects.exists()


def test_an_on_demand_lease_with_an_end_gets_the_ending_notices(
    alice, acme, fleet, django_capture_on_commit_callbacks
) -> None:
    now = timezone.now()
    lease = lease_on(
        gpus_of(fleet.nodes[0]),
        organization=acme,
        booked_by=alice,
        kind=LeaseKind.ON_DEMAND,
        start=now - timedelta(hours=1),
        end=now + timedelta(minutes=45),
        state=LeaseState.ACTIVE,
    )
    lease_on(
        gpus_of(fleet.nodes[1]),
        organization=acme,
        booked_by=alice,
        kind=LeaseKind.ON_DEMAND,
        start=now - timedelta(hours=1),
        state=LeaseState.ACTIVE,
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert leases_notify_ending(now=now) == 1
    assert (
        LeaseNotice.objects.get().lease == lease
        and LeaseNotice.objects.get().kind == LeaseNoticeKind.ENDING_60
    )
