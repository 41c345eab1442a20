"""Queued lease requests: the API and its rules, the quota, the fair order, the bounded backfill,
expiry, the owner's email, and the pages to queue, watch and cancel them."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import AuditEntry
from clusters.choices import LeaseRequestState, Pool
from clusters.models import Allocation, DemandRecord, Lease, LeaseRequest, Node
from clusters.services.booking import lease_book
from clusters.services.lease_requests import lease_request_create, lease_requests_dispatch
from core.refusals import Refused
from tests.clusters.helpers import fill, later, reserved
from tests.factories import ClusterFactory, MembershipFactory, NodeFactory, RegionFactory


def queue(api, **body):
    response = api.post(
        "/api/v1/lease-requests/", {"gpus": 8, "kind": "reserved", "hours": 2, **body}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()


def free(lease: Lease) -> None:
    """The lease's GPUs are free from now: as a release leaves them."""
    now = timezone.now()
    for allocation in lease.allocations.all():
        allocation.period = (allocation.period.lower, now)
        allocation.save(update_fields=["period"])
    Lease.objects.filter(pk=lease.pk).update(end=now)


def full_region(fleet, organization, user, until=None) -> list[Lease]:
    fill(fleet.nodes, organization=organization, booked_by=user, until=until or later(days=2))
    return list(Lease.objects.order_by("pk"))


@pytest.fixture
def holder(db):
    """Someone else's organization whose leases fill the fleet."""
    return MembershipFactory.create(organization__gpu_quota=10_000, role="owner")


def test_a_request_is_queued_with_its_position_and_booked_when_gpus_free(
    api_as, alice, acme, fleet, holder, big_quota
):
    leases = full_region(fleet, holder.organization, holder.user)
    first = queue(api_as(alice))
    second = queue(api_as(alice), gpus=4)
    assert (first["state"], first["position"], first["lease"]) == ("queued", 1, None)
    assert second["position"] == 2 and second["region"] is None
    assert lease_requests_dispatch().booked == []  # nothing is free yet
    free(leases[0])
    report = lease_requests_dispatch()
    assert report.booked == [first["id"]]
    got = api_as(alice).get(f"/api/v1/lease-requests/{first['id']}/").json()
    assert got["state"] == "booked" and got["position"] is None
    lease = Lease.objects.get(public_id=got["lease"])
    assert (lease.gpus, lease.kind, lease.organization) == (8, "reserved", acme)
    assert lease.end - lease.start == timedelta(hours=2) and lease.start <= timezone.now() + timedelta(
        minutes=1
    )
    assert api_as(alice).get(f"/api/v1/lease-requests/{second['id']}/").json()["position"] == 1
    assert AuditEntry.objects.filter(action="lease_request.book", object_id=first["id"]).count() == 1


def test_the_owner_is_emailed_with_the_lease(
    api_as, alice, bob, acme, fleet, holder, big_quota, django_capture_on_commit_callbacks
):
    leases = full_region(fleet, holder.organization, holder.user)
    created = queue(api_as(bob), kind="on_demand", hours=None)
    free(leases[0])
    with django_capture_on_commit_callbacks(execute=True):
        lease_requests_dispatch()
    lease = LeaseRequest.objects.get(public_id=created["id"]).lease
    [message] = [m for m in mail.outbox if "booked" in str(m.subject)]
    assert sorted(message.recipients()) == ["alice@acme.example", "bob@acme.example"]
    body = str(message.body)
    assert str(lease.public_id) in body and f"/leases/{lease.public_id}/" in body


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"gpus": 3}, "gpus", "1, 2, 4 or 8 GPUs"),
        ({"gpus": 0}, "gpus", "greater than or equal to 1"),
        ({"gpus": 10_001}, "gpus", "less than or equal to 10000"),
        ({"hours": None}, "hours", "needs its length in hours"),
        ({"hours": 0}, "hours", "greater than or equal to 1"),
        ({"hours": 24 * 91}, "hours", "at most 90 days"),
        ({"hours": 5_813_458_266_304_315_862}, "hours", "at most 90 days"),
        ({"kind": "on_demand", "hours": 3}, "hours", "leave the hours out"),
        ({"kind": "spot"}, "kind", "not a valid choice"),
        ({"region": "us-xx-9"}, "region", "No region has this code"),
        ({"not_after": "2020-01-01T00:00:00Z"}, "not_after", "must be in the future"),
        ({"not_after": later(days=181).isoformat()}, "not_after", "at most 180 days"),
        ({"not_after": later().replace(tzinfo=None).isoformat()}, "not_after", "with its offset"),
    ],
)
def test_bad_requests_get_a_400_naming_the_field_and_queue_nothing(
    api_as, alice, fleet, body, field, message
):
    response = api_as(alice).post(
        "/api/v1/lease-requests/", {"gpus": 8, "kind": "reserved", "hours": 2, **body}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"] and message in str(response.json()["fields"][field])
    assert LeaseRequest.objects.count() == 0


def test_queued_gpus_count_against_the_quota(api_as, alice, acme, fleet) -> None:
    acme.gpu_quota = 16
    acme.save(update_fields=["gpu_quota"])
    queue(api_as(alice), gpus=8)
    refused = api_as(alice).post("/api/v1/lease-requests/", {"gpus": 16, "kind": "on_demand"}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "quota_exceeded"
    assert "has 8 queued" in refused.json()["detail"] and refused.json()["gpus_queued"] == 8
    booking = api_as(alice).post("/api/v1/leases/", reserved(16), format="json")
    assert booking.status_code == 403 and booking.json()["gpus_queued"] == 8
    assert api_as(alice).post("/api/v1/leases/", reserved(8), format="json").status_code == 201


def test_booking_a_request_does_not_count_its_own_gpus_twice(alice, acme, fleet) -> None:
    acme.gpu_quota = 8
    acme.save(update_fields=["gpu_quota"])
    request = lease_request_create(user=alice, organization=acme, gpus=8, kind="reserved", hours=1)
    assert lease_requests_dispatch().booked == [str(request.public_id)]


def test_oldest_first_among_organizations_in_the_general_pool(
    alice, acme, globex, charlie, fleet, holder, big_quota
):
    leases = full_region(fleet, holder.organization, holder.user)
    older = lease_request_create(user=charlie, organization=globex, gpus=8, kind="on_demand")
    newer = lease_request_create(user=alice, organization=acme, gpus=8, kind="on_demand")
    free(leases[3])
    assert lease_requests_dispatch().booked == [str(older.public_id)]
    free(leases[4])
    assert lease_requests_dispatch().booked == [str(newer.public_id)]


def test_approved_early_stage_organizations_come_first_in_the_early_stage_pool(
    alice, acme, globex, charlie, fleet, holder, big_quota
):
    acme.early_stage_approved = True
    acme.save(update_fields=["early_stage_approved"])
    Node.objects.filter(pk=fleet.nodes[0].pk).update(pool=Pool.EARLY_STAGE)
    leases = full_region(fleet, holder.organization, holder.user)
    older_general = lease_request_create(user=charlie, organization=globex, gpus=8, kind="on_demand")
    newer_early = lease_request_create(user=alice, organization=acme, gpus=8, kind="on_demand")
    free(leases[0])  # the early-stage node
    assert lease_requests_dispatch().booked == [str(newer_early.public_id)]
    assert LeaseRequest.objects.get(pk=older_general.pk).state == LeaseRequestState.QUEUED


def test_a_request_that_does_not_fit_does_not_block_smaller_ones_behind_it(
    alice, acme, fleet, holder, big_quota
):
    leases = full_region(fleet, holder.organization, holder.user)
    big = lease_request_create(user=alice, organization=acme, gpus=16, kind="on_demand")
    small = lease_request_create(user=alice, organization=acme, gpus=8, kind="on_demand")
    free(leases[0])
    assert lease_requests_dispatch().booked == [str(small.public_id)]
    assert LeaseRequest.objects.get(pk=big.pk).passed_over == 1


def test_a_request_passed_over_too_often_holds_the_gpus_freeing_for_it(
    alice, acme, fleet, holder, big_quota, settings
):
    settings.LEASE_REQUEST_BACKFILL_LIMIT = 2
    leases = full_region(fleet, holder.organization, holder.user)
    big = lease_request_create(user=alice, organization=acme, gpus=16, kind="on_demand")
    smalls = [lease_request_create(user=alice, organization=acme, gpus=8, kind="on_demand") for _ in range(4)]
    for lease in leases[:2]:  # two dispatches each book a small one ahead of the big one
        free(lease)
        lease_requests_dispatch()
    assert LeaseRequest.objects.get(pk=big.pk).passed_over == 2
    free(leases[4])  # another cluster: one node frees, not enough for 16
    report = lease_requests_dispatch()
    assert report.booked == [] and report.held == ["us-tx-1"]
    free(leases[5])  # its neighbour: now two whole nodes of one cluster are free
    assert lease_requests_dispatch().booked == [str(big.public_id)]
    assert LeaseRequest.objects.filter(pk__in=[s.pk for s in smalls], state="queued").count() == 2


def test_on_demand_requests_for_a_region_are_booked_oldest_first_as_far_as_gpus_go(
    acme, globex, alice, charlie, fleet, holder, big_quota, django_capture_on_commit_callbacks
) -> None:
    """Booked together (one statement for the run), they keep the fair order, each its lease, its
    audit row and its email; those that do not fit stay queued."""
    leases = full_region(fleet, holder.organization, holder.user)
    people = [(alice, acme), (charlie, globex)]
    requests = [
        lease_request_create(
            user=user, organization=organization, gpus=1, kind="on_demand", region=fleet.region
        )
        for user, organization in people * 6
    ]
    free(leases[2])
    with django_capture_on_commit_callbacks(execute=True):
        report = lease_requests_dispatch()
    assert report.booked == [str(request.public_id) for request in requests[:8]]
    booked = LeaseRequest.objects.filter(state=LeaseRequestState.BOOKED).select_related("lease")
    assert {r.lease.organization_id for r in booked} == {acme.pk, globex.pk}
    nodes = Allocation.objects.filter(lease__in=[r.lease for r in booked]).values_list("node", flat=True)
    assert set(nodes) == {leases[2].allocations.get(gpu__index=0).node_id}  # the node freed
    assert LeaseRequest.objects.filter(pk__in=[r.pk for r in requests[8:]], state="queued").count() == 4
    assert AuditEntry.objects.filter(action="lease_request.book").count() == 8
    assert AuditEntry.objects.filter(action="lease.book").count() == 8
    assert len([m for m in mail.outbox if "booked" in str(m.subject)]) == 8


def test_a_request_its_organization_cannot_pay_for_stays_queued_and_blocks_no_one(
    alice, acme, fleet, holder, big_quota
) -> None:
    """Billing's check refuses it (402 payment_required, as a direct booking gets); the others,
    older and younger, are booked."""
    unpaid = MembershipFactory.create(organization__terms="prepaid", role="owner")
    leases = full_region(fleet, holder.organization, holder.user)
    first, second = (
        lease_request_create(user=alice, organization=acme, gpus=1, kind="on_demand", region=fleet.region)
        for _ in range(2)
    )
    refused = lease_request_create(
        user=unpaid.user, organization=unpaid.organization, gpus=1, kind="on_demand", region=fleet.region
    )
    last = lease_request_create(user=alice, organization=acme, gpus=1, kind="on_demand", region=fleet.region)
    free(leases[0])
    assert lease_requests_dispatch().booked == [str(r.public_id) for r in (first, second, last)]
    assert LeaseRequest.objects.get(pk=refused.pk).state == LeaseRequestState.QUEUED
    assert not Lease.objects.filter(organization=unpaid.organization).exists()
    with pytest.raises(Refused) as direct:
        lease_book(
            user=unpaid.user, organization=unpaid.organization, region=fleet.region, gpus=1, kind="on_demand"
        )
    assert direct.value.code == "payment_required"


def test_a_request_for_any_region_is_booked_where_gpus_free(alice, acme, fleet, holder, big_quota) -> None:
    full_region(fleet, holder.organization, holder.user)
    virginia = RegionFactory.create(code="us-va-1", name="Virginia 1", us_state="Virginia")
    request = lease_request_create(user=alice, organization=acme, gpus=8, kind="on_demand")
    NodeFactory.create(
        cluster=ClusterFactory.create(region=virginia, name="va1-c01"), hostname="va1-c01-n001"
    )
    lease_requests_dispatch()
    assert LeaseRequest.objects.get(pk=request.pk).lease.region == virginia


def test_a_request_not_booked_by_its_not_after_expires_and_is_recorded_as_demand(
    alice, acme, fleet, holder, big_quota, django_capture_on_commit_callbacks
):
    full_region(fleet, holder.organization, holder.user)
    request = lease_request_create(
        user=alice,
        organization=acme,
        gpus=8,
        kind="reserved",
        hours=3,
        not_after=timezone.now() + timedelta(minutes=5),
    )
    with django_capture_on_commit_callbacks(execute=True):
        report = lease_requests_dispatch(now=timezone.now() + timedelta(minutes=6))
    assert report.expired == 1
    assert LeaseRequest.objects.get(pk=request.pk).state == LeaseRequestState.EXPIRED
    record = DemandRecord.objects.get(reason="request_expired")
    assert (record.gpus, record.gpu_hours, record.region) == (8, 24, None)
    assert any("expired" in str(m.subject) for m in mail.outbox)


def test_cancelling_takes_a_request_out_of_the_queue_once(api_as, alice, acme, fleet) -> None:
    created = queue(api_as(alice))
    response = api_as(alice).post(f"/api/v1/lease-requests/{created['id']}/cancel/")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    again = api_as(alice).post(f"/api/v1/lease-requests/{created['id']}/cancel/")
    assert again.status_code == 409 and again.json()["code"] == "invalid_state"
    assert lease_requests_dispatch().booked == []


def test_another_organizations_requests_are_invisible(api_as, alice, charlie, fleet) -> None:
    created = queue(api_as(alice))
    assert api_as(charlie).get(f"/api/v1/lease-requests/{created['id']}/").status_code == 404
    assert api_as(charlie).post(f"/api/v1/lease-requests/{created['id']}/cancel/").status_code == 404
    assert api_as(charlie).get("/api/v1/lease-requests/").json()["results"] == []
    assert [r["id"] for r in api_as(alice).get("/api/v1/lease-requests/").json()["results"]] == [
        created["id"]
    ]


def test_finance_members_cannot_queue(api_as, fiona, fleet) -> None:
    response = api_as(fiona).post("/api/v1/lease-requests/", {"gpus": 8, "kind": "on_demand"}, format="json")
    assert response.status_code == 403


def test_the_pages_queue_watch_and_cancel_a_request(client_as, alice, acme, fleet, holder, big_quota) -> None:
    full_region(fleet, holder.organization, holder.user)
    client = client_as("alice")
    assert client.get("/requests/").status_code == 200
    response = client.post(
        "/requests/", {"gpus": "8", "kind": "reserved", "hours": "4", "region": "us-tx-1", "tz": "UTC"}
    )
    request = LeaseRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/requests/{request.public_id}/"
    page = client.get(response["Location"]).content.decode()
    assert 'data-field="position">1' in page and "Cancel this request" in page
    assert f'data-request="{request.public_id}"' in client.get("/requests/").content.decode()
    client.post(f"/requests/{request.public_id}/cancel/")
    assert LeaseRequest.objects.get().state == LeaseRequestState.CANCELLED
    assert 'data-state="cancelled"' in client.get(f"/requests/{request.public_id}/live/").content.decode()


def test_the_request_form_shows_what_is_wrong(client_as, fleet) -> None:
    response = client_as("alice").post("/requests/", {"gpus": "3", "kind": "reserved", "tz": "UTC"})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "1, 2, 4 or 8 GPUs" in errors["gpus"][0] and "length in hours" in errors["hours"][0]
    assert LeaseRequest.objects.count() == 0


def test_a_full_booking_check_offers_to_queue_for_it(
    client_as, alice, acme, fleet, holder, big_quota
) -> None:
    full_region(fleet, holder.organization, holder.user)
    html = (
        client_as("alice")
        .get("/book/check/", {"region": "us-tx-1", "gpus": "8", "kind": "on_demand", "tz": "UTC"})
        .content.decode()
    )
    assert 'action="/requests/"' in html and "Queue for it" in html
