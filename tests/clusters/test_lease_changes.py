"""Extend, release and cancel: what each changes, and when each is refused."""

from django.utils import timezone

from accounts.models import AuditEntry
from clusters.choices import LeaseState
from clusters.models import Allocation, Lease
from tests.clusters.helpers import later, make_active, reserved


def book(client, **kw):
    response = client.post("/api/v1/leases/", reserved(**kw), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_it_extends_a_reserved_lease_on_the_same_gpus(api_as, alice, fleet) -> None:
    client = api_as(alice)
    lease = book(client, gpus=8, start=later(0), hours=2)
    response = client.post(
        f"/api/v1/leases/{lease['id']}/extend/", {"end": later(5).isoformat()}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["end"] == later(5).isoformat() and response.json()["nodes"] == lease["nodes"]
    uppers = set(Allocation.objects.filter(lease__public_id=lease["id"]).values_list("period", flat=True))
    assert {p.upper for p in uppers} == {later(5)}
    entry = AuditEntry.objects.get(action="lease.extend")
    assert entry.before["end"] == later(2).isoformat() and entry.after["end"] == later(5).isoformat()


def test_it_refuses_to_extend_into_someone_elses_booking_saying_until_when_it_is_free(
    api_as, alice, charlie, fleet
) -> None:
    mine = book(api_as(alice), gpus=8, start=later(0), hours=2)
    book(api_as(charlie), gpus=8, start=later(3), hours=2)  # lands on the same node after mine
    refused = api_as(alice).post(
        f"/api/v1/leases/{mine['id']}/extend/", {"end": later(4).isoformat()}, format="json"
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "not_extendable" and refused.json()["free_until"] == later(3).isoformat()
    assert Lease.objects.get(public_id=mine["id"]).end == later(2)
    fits = api_as(alice).post(
        f"/api/v1/leases/{mine['id']}/extend/", {"end": later(3).isoformat()}, format="json"
    )
    assert fits.status_code == 200
    assert Lease.objects.get(public_id=mine["id"]).end == later(3)


def test_extending_respects_the_quota(api_as, alice, fleet, acme) -> None:
    client = api_as(alice)
    first = book(client, gpus=4, start=later(0), hours=2)
    book(client, gpus=8, start=later(3), hours=2)
    refused = client.post(
        f"/api/v1/leases/{first['id']}/extend/", {"end": later(4).isoformat()}, format="json"
    )
    assert refused.status_code == 403 and refused.json()["code"] == "quota_exceeded"
    assert Lease.objects.get(public_id=first["id"]).end == later(2)


def test_it_refuses_extensions_that_break_the_rules(api_as, alice, fleet) -> None:
    client = api_as(alice)
    lease = book(client, gpus=1, start=later(0), hours=2)
    url = f"/api/v1/leases/{lease['id']}/extend/"
    earlier = client.post(url, {"end": later(1).isoformat()}, format="json")
    assert earlier.status_code == 400 and "later than the current end" in earlier.json()["fields"]["end"][0]
    too_long = client.post(url, {"end": later(24 * 91).isoformat()}, format="json")
    assert too_long.status_code == 400 and "at most 90 days" in too_long.json()["fields"]["end"][0]
    on_demand = client.post(
        "/api/v1/leases/", {"region": "us-tx-1", "gpus": 1, "kind": "on_demand"}, format="json"
    )
    wrong_kind = client.post(
        f"/api/v1/leases/{on_demand.json()['id']}/extend/", {"end": later(3).isoformat()}
    )
    assert wrong_kind.status_code == 409 and wrong_kind.json()["code"] == "invalid_state"
    assert Lease.objects.get(public_id=lease["id"]).end == later(2)


def test_releasing_an_active_lease_ends_it_now_and_closes_its_allocations(api_as, alice, fleet) -> None:
    client = api_as(alice)
    lease = book(client, gpus=2, start=later(0), hours=4)
    make_active(lease["id"])
    before = timezone.now()
    response = client.post(f"/api/v1/leases/{lease['id']}/release/")
    assert response.status_code == 200
    row = Lease.objects.get(public_id=lease["id"])
    assert row.state == LeaseState.ACTIVE and before <= row.end <= timezone.now()
    periods = Allocation.objects.filter(lease=row, is_live=True).values_list("period", flat=True)
    assert [p.upper for p in periods] == [row.end, row.end]
    again = client.post(f"/api/v1/leases/{lease['id']}/release/")
    assert again.status_code == 409 and again.json()["code"] == "invalid_state"


def test_releasing_an_on_demand_lease_closes_its_open_period(api_as, alice, fleet) -> None:
    client = api_as(alice)
    lease = client.post(
        "/api/v1/leases/", {"region": "us-tx-1", "gpus": 1, "kind": "on_demand"}, format="json"
    ).json()
    make_active(lease["id"], started_hours_ago=0.5)
    assert client.post(f"/api/v1/leases/{lease['id']}/release/").status_code == 200
    allocation = Allocation.objects.get(lease__public_id=lease["id"])
    assert allocation.period.upper is not None and allocation.period.upper <= timezone.now()
    assert AuditEntry.objects.filter(action="lease.release", object_id=lease["id"]).count() == 1


def test_releasing_a_scheduled_lease_cancels_it(api_as, alice, fleet) -> None:
    client = api_as(alice)
    lease = book(client, gpus=1)
    response = client.post(f"/api/v1/leases/{lease['id']}/release/")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    assert Lease.objects.get(public_id=lease["id"]).state == LeaseState.CANCELLED
    assert not Allocation.objects.filter(lease__public_id=lease["id"], is_live=True).exists()
    assert AuditEntry.objects.filter(action="lease.cancel", object_id=lease["id"]).count() == 1


def test_cancelling_a_scheduled_lease_frees_its_gpus(api_as, alice, fleet) -> None:
    client = api_as(alice)
    lease = book(client, gpus=8)
    response = client.post(f"/api/v1/leases/{lease['id']}/cancel/")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    assert Allocation.objects.filter(lease__public_id=lease["id"]).count() == 8
    assert not Allocation.objects.filter(lease__public_id=lease["id"], is_live=True).exists()
    entry = AuditEntry.objects.get(action="lease.cancel")
    assert entry.before["state"] == "scheduled" and entry.after["state"] == "cancelled"
    again = book(client, gpus=8)["nodes"]
    assert [(n["hostname"], n["gpu_indices"]) for n in again] == [
        (n["hostname"], n["gpu_indices"]) for n in lease["nodes"]
    ]


def test_it_refuses_to_cancel_a_lease_that_is_not_scheduled_or_has_started(api_as, alice, fleet) -> None:
    client = api_as(alice)
    active = book(client, gpus=1)
    started = book(client, gpus=1)
    make_active(active["id"])
    refused = client.post(f"/api/v1/leases/{active['id']}/cancel/")
    assert refused.status_code == 409 and refused.json()["code"] == "invalid_state"
    make_active(started["id"])
    Lease.objects.filter(public_id=started["id"]).update(state=LeaseState.SCHEDULED)
    late = client.post(f"/api/v1/leases/{started['id']}/cancel/")
    assert late.status_code == 409 and "already started" in late.json()["detail"]
    assert Lease.objects.filter(state=LeaseState.CANCELLED).count() == 0
