"""POST /api/v1/leases/ and the reads around it: rules, quota, availability, quotes, tenant isolation."""

from datetime import timedelta
from decimal import Decimal

import pytest

from accounts.models import AuditEntry
from accounts.services.ssh_keys import ssh_key_add
from clusters.models import Allocation, Lease, PriceBookEntry
from tests.accounts.helpers import ALICE_KEY
from tests.clusters.helpers import later, reserved


def test_it_books_a_reserved_lease_and_answers_with_its_nodes(api_as, alice, fleet) -> None:
    response = api_as(alice).post("/api/v1/leases/", reserved(4), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["gpus"] == 4 and body["kind"] == "reserved" and body["state"] == "scheduled"
    account = "vp-" + body["id"].replace("-", "")[:12]
    assert body["nodes"] == [
        {
            "hostname": "tx1-c01-n001",
            "gpu_indices": [0, 1, 2, 3],
            "ssh_command": f"ssh {account}@tx1-c01-n001",
        }
    ]
    assert (body["region"], body["region_name"], body["state_reason"]) == ("us-tx-1", "Texas 1", "")
    assert body["price_per_gpu_hour"] == "1.9900" and body["currency"] == "USD"
    lease = Lease.objects.get(public_id=body["id"])
    assert lease.booked_by == alice and lease.organization.slug == "acme-ai"
    assert Allocation.objects.filter(lease=lease, is_live=True).count() == 4
    assert AuditEntry.objects.get(action="lease.book").object_id == body["id"]


def test_it_books_on_demand_at_the_on_demand_price_with_the_chosen_ssh_keys(api_as, alice, fleet) -> None:
    key = ssh_key_add(user=alice, name="laptop", public_key=ALICE_KEY)
    body = {"region": "us-tx-1", "gpus": 1, "kind": "on_demand", "ssh_key_ids": [str(key.public_id)]}
    response = api_as(alice).post("/api/v1/leases/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["end"] is None and response.json()["price_per_gpu_hour"] == "2.4900"
    assert response.json()["ssh_key_ids"] == [str(key.public_id)]
    assert Lease.objects.get().ssh_public_keys == [key.public_key]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"gpus": 3}, "gpus", "Book 1, 2, 4 or 8 GPUs"),
        ({"gpus": 12}, "gpus", "multiple of 8"),
        ({"gpus": 0}, "gpus", "greater than or equal to 1"),
        ({"kind": "spot"}, "kind", "not a valid choice"),
        ({"region": "us-xx-9"}, "region", "No region has this code"),
        ({"start": "2020-01-01T00:00:00Z", "end": "2020-01-01T05:00:00Z"}, "start", "may not be in the past"),
        ({"start": later(days=181).isoformat()}, "start", "at most 180 days ahead"),
        ({"end": (later() + timedelta(minutes=59)).isoformat()}, "end", "at least 1 hour"),
        ({"end": (later() + timedelta(days=91)).isoformat()}, "end", "at most 90 days"),
        ({"end": later().isoformat()}, "end", "after the start"),
        ({"start": (later() + timedelta(seconds=30)).isoformat()}, "start", "whole minutes"),
        ({"start": later().replace(tzinfo=None).isoformat()}, "start", "with its offset"),
        ({"end": None}, "end", "needs a start and an end"),
        ({"kind": "on_demand"}, "start", "on-demand lease starts now"),
        (
            {"ssh_key_ids": ["7c4e4d52-9d1f-4c55-8a43-0d0f3a1c9e11"]},
            "ssh_key_ids",
            "Not one of your SSH keys",
        ),
    ],
)
def test_it_refuses_invalid_bookings_naming_the_field(api_as, alice, fleet, change, field, message) -> None:
    body = {**reserved(8, start=later()), **change}
    response = api_as(alice).post("/api/v1/leases/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert message in str(response.json()["fields"][field])
    assert not Lease.objects.exists()


def test_the_limits_are_settings(api_as, alice, fleet, settings) -> None:
    settings.BOOKING_MAX_AHEAD = timedelta(days=2)
    settings.BOOKING_MIN_DURATION = timedelta(minutes=15)
    too_far = api_as(alice).post("/api/v1/leases/", reserved(1, start=later(days=3)), format="json")
    short = api_as(alice).post("/api/v1/leases/", reserved(1, hours=0.25), format="json")
    assert too_far.status_code == 400 and "at most 2 days ahead" in too_far.json()["fields"]["start"][0]
    assert short.status_code == 201
    assert Lease.objects.count() == 1


def test_it_refuses_above_quota_at_the_busiest_instant_of_the_window(api_as, alice, fleet, acme) -> None:
    acme.gpu_quota = 12
    acme.save(update_fields=["gpu_quota"])
    client = api_as(alice)
    assert (
        client.post("/api/v1/leases/", reserved(8, start=later(0), hours=2), format="json").status_code == 201
    )
    assert (
        client.post("/api/v1/leases/", reserved(4, start=later(4), hours=2), format="json").status_code == 201
    )
    # [1h, 5h) overlaps both, but never both at once: at most 8 held, so 4 more fit.
    assert (
        client.post("/api/v1/leases/", reserved(4, start=later(1), hours=4), format="json").status_code == 201
    )
    refused = client.post("/api/v1/leases/", reserved(2, start=later(1), hours=1), format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "quota_exceeded"
    assert refused.json()["quota"] == 12 and refused.json()["gpus_held"] == 12
    assert refused.json()["quota_request_url"] == "/api/v1/quota-requests/"  # where to ask for more
    assert Lease.objects.count() == 3


def test_the_quota_counts_running_on_demand_leases_but_not_cancelled_ones(api_as, alice, fleet, acme) -> None:
    client = api_as(alice)
    lease = client.post("/api/v1/leases/", reserved(8), format="json").json()
    assert client.post(f"/api/v1/leases/{lease['id']}/cancel/").status_code == 200
    on_demand = {"region": "us-tx-1", "gpus": 8, "kind": "on_demand"}
    assert client.post("/api/v1/leases/", on_demand, format="json").status_code == 201
    refused = client.post("/api/v1/leases/", reserved(1, start=later(days=60)), format="json")
    assert refused.status_code == 403 and refused.json()["gpus_held"] == 8


def test_it_answers_no_capacity_with_the_largest_lease_that_fits(api_as, alice, fleet, acme) -> None:
    acme.gpu_quota = 1000
    acme.save(update_fields=["gpu_quota"])
    client = api_as(alice)
    assert client.post("/api/v1/leases/", reserved(32), format="json").status_code == 201
    assert client.post("/api/v1/leases/", reserved(8), format="json").status_code == 201
    refused = client.post("/api/v1/leases/", reserved(32), format="json")
    assert refused.status_code == 409
    assert refused.json()["code"] == "no_capacity" and refused.json()["max_gpus_available"] == 24
    assert Lease.objects.count() == 2


def test_availability_counts_free_gpus_for_the_whole_window(api_as, alice, fleet, acme) -> None:
    client = api_as(alice)
    client.post("/api/v1/leases/", reserved(2, start=later(1), hours=1), format="json")
    params = {"region": "us-tx-1", "gpus": 8, "start": later(0).isoformat(), "end": later(3).isoformat()}
    response = client.get("/api/v1/availability/", params)
    assert response.status_code == 200
    assert response.json()["free_gpus"] == 62 and response.json()["can_place"] is True
    # The largest lease is one cluster's worth of whole nodes.
    assert response.json()["max_gpus_available"] == 32
    elsewhere = client.get("/api/v1/availability/", {**params, "start": later(2).isoformat(), "gpus": 40})
    assert elsewhere.json()["free_gpus"] == 64 and elsewhere.json()["can_place"] is False
    bad = client.get("/api/v1/availability/", {"region": "nowhere", "gpus": 1})
    assert bad.status_code == 400 and "region" in bad.json()["fields"]


def test_the_timeline_shows_free_gpus_per_hour_for_fourteen_days(api_as, alice, fleet) -> None:
    client = api_as(alice)
    start = later(2, days=0)
    client.post("/api/v1/leases/", reserved(8, start=start, hours=3), format="json")
    client.post("/api/v1/leases/", reserved(8, start=start + timedelta(hours=3), hours=1), format="json")
    response = client.get("/api/v1/regions/us-tx-1/timeline/")
    assert response.status_code == 200
    hours = response.json()["hours"]
    assert len(hours) == 14 * 24
    free = {h["start"]: h["free_gpus"] for h in hours}
    assert free[(start - timedelta(hours=1)).isoformat()] == 64
    assert free[start.isoformat()] == 56
    assert free[(start + timedelta(hours=3)).isoformat()] == 56
    assert free[(start + timedelta(hours=4)).isoformat()] == 64
    assert client.get("/api/v1/regions/nowhere/timeline/").status_code == 404


def test_a_quote_is_gpus_times_hours_times_the_price(api_as, alice, fleet) -> None:
    response = api_as(alice).post("/api/v1/quotes/", reserved(4, hours=2.5), format="json")
    assert response.status_code == 200
    assert Decimal(response.json()["total"]) == Decimal("1.99") * 4 * Decimal("2.5") == Decimal("19.90")
    assert response.json()["price_per_gpu_hour"] == "1.9900" and response.json()["hours"] == "2.5000"
    on_demand = api_as(alice).post("/api/v1/quotes/", {"region": "us-tx-1", "gpus": 8, "kind": "on_demand"})
    assert on_demand.status_code == 200
    assert on_demand.json()["total"] is None and on_demand.json()["per_hour"] == "19.92"
    assert not Lease.objects.exists()


def test_a_quote_without_a_price_is_refused_as_a_booking_would_be(api_as, alice, fleet) -> None:
    PriceBookEntry.objects.filter(kind="reserved").delete()
    quoted = api_as(alice).post("/api/v1/quotes/", reserved(4), format="json")
    booked = api_as(alice).post("/api/v1/leases/", reserved(4), format="json")
    assert quoted.status_code == booked.status_code == 409
    assert quoted.json() == booked.json()
    assert quoted.json()["code"] == "no_price" and "reserved GPUs in us-tx-1" in quoted.json()["detail"]
    assert not Lease.objects.exists() and not Allocation.objects.exists()


def test_leases_can_be_listed_by_state(api_as, alice, bob, fleet, acme) -> None:
    acme.gpu_quota = 100
    acme.save(update_fields=["gpu_quota"])
    first = api_as(alice).post("/api/v1/leases/", reserved(1), format="json").json()
    api_as(bob).post("/api/v1/leases/", reserved(1), format="json")
    api_as(alice).post(f"/api/v1/leases/{first['id']}/cancel/")
    everything = api_as(bob).get("/api/v1/leases/").json()
    assert everything["count"] == 2
    cancelled = api_as(bob).get("/api/v1/leases/", {"state": "cancelled"}).json()
    assert [lease["id"] for lease in cancelled["results"]] == [first["id"]]
    assert api_as(bob).get("/api/v1/leases/", {"state": "nonsense"}).status_code == 400


def test_every_lease_endpoint_answers_404_for_another_organizations_lease(
    api_as, alice, charlie, fleet
) -> None:
    lease = api_as(alice).post("/api/v1/leases/", reserved(1), format="json").json()
    other = api_as(charlie)
    assert other.get(f"/api/v1/leases/{lease['id']}/").status_code == 404
    for action in ("extend", "release", "cancel"):
        body = {"end": later(5).isoformat()} if action == "extend" else {}
        assert other.post(f"/api/v1/leases/{lease['id']}/{action}/", body, format="json").status_code == 404
    assert other.get("/api/v1/leases/").json()["count"] == 0
    assert other.get("/api/v1/leases/not-a-uuid/").status_code == 404
    assert Lease.objects.get().state == "scheduled"


def test_finance_members_may_not_book(api_as, fiona, fleet) -> None:
    response = api_as(fiona).post("/api/v1/leases/", reserved(1), format="json")
    assert response.status_code == 403
    assert not Lease.objects.exists()


IMPOSSIBLE_TIMES = ["2027-02-30T10:00:00Z", "2027-03-01T25:00:00Z", "2027-03-01T10:99:00Z"]


@pytest.mark.parametrize("when", IMPOSSIBLE_TIMES)
def test_impossible_dates_and_times_are_a_400_naming_the_field(api_as, alice, fleet, when) -> None:
    client = api_as(alice)
    lease = client.post("/api/v1/leases/", reserved(1), format="json").json()
    answers = {
        "start": client.post("/api/v1/leases/", {**reserved(1), "start": when}, format="json"),
        "end": client.post("/api/v1/quotes/", {**reserved(1), "end": when}, format="json"),
        "extend end": client.post(f"/api/v1/leases/{lease['id']}/extend/", {"end": when}, format="json"),
        "availability start": client.get(
            "/api/v1/availability/", {"region": "us-tx-1", "gpus": 1, "start": when}
        ),
    }
    for what, response in answers.items():
        field = what.split()[-1]
        assert response.status_code == 400, what
        assert "No such date and time" in response.json()["fields"][field][0], what
    assert Lease.objects.get().end.isoformat() == lease["end"].replace("Z", "+00:00")
