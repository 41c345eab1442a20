"""Capacity offerings: the earliest windows that can be booked, the API's rules, and 409s that carry them."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from clusters.choices import Pool
from clusters.models import DemandRecord, Lease, Node, Region
from clusters.selectors.offerings import capacity_offerings, ceil_to_step
from tests.clusters.helpers import fill, later, reserved
from tests.factories import ClusterFactory, NodeFactory, RegionFactory


def offerings(api, **query) -> list[dict]:
    response = api.get("/api/v1/capacity/offerings/", query)
    assert response.status_code == 200, response.json()
    return response.json()["offerings"]


def test_an_idle_region_is_offered_from_the_next_minute_at_the_reserved_price(api_as, alice, fleet) -> None:
    assert len(offerings(api_as(alice), gpus=8, hours=3)) == 1  # the earliest of the one region
    found = offerings(api_as(alice), gpus=8, hours=3, per_region=3)
    assert len(found) == 3  # three windows in the one region, one after the other
    first = found[0]
    assert first["region"] == "us-tx-1" and first["pool"] == "general" and first["gpus"] == 8
    start = datetime.fromisoformat(first["start"])
    assert timezone.now() <= start <= timezone.now() + timedelta(minutes=1)
    assert datetime.fromisoformat(first["end"]) - start == timedelta(hours=3)
    assert first["price_per_gpu_hour"] == "1.9900" and first["total_price"] == "47.76"  # 8 × 3 × 1.99
    starts = [datetime.fromisoformat(o["start"]) for o in found]
    assert starts[1] - starts[0] >= timedelta(hours=3) and starts[2] - starts[1] >= timedelta(hours=3)


def test_a_full_region_is_offered_from_when_its_gpus_free(acme, alice, fleet, big_quota) -> None:
    frees_at = later(2)
    fill(fleet.nodes, organization=acme, booked_by=alice, until=frees_at)
    found = capacity_offerings(organization=acme, gpus=8, length=timedelta(hours=3))
    assert [o.start for o in found][:1] == [frees_at]


def test_the_same_gpus_must_be_free_for_the_whole_window(acme, alice, fleet, big_quota) -> None:
    """GPUs 4-7 are free now but for under an hour; four GPUs are free for two hours once 0-3 free."""
    fill(fleet.nodes[1:], organization=acme, booked_by=alice, until=later(days=30))
    node, soon = fleet.nodes[0], later(0, days=0)
    fill([node], organization=acme, booked_by=alice, until=soon + timedelta(hours=1), indices=[0, 1, 2, 3])
    fill([node], organization=acme, booked_by=alice, until=later(days=30), indices=[4, 5, 6, 7], start=soon)
    found = capacity_offerings(organization=acme, gpus=4, length=timedelta(hours=2))
    assert found[0].start == soon + timedelta(hours=1)
    assert capacity_offerings(organization=acme, gpus=8, length=timedelta(hours=2))[0].start == later(days=30)


def test_more_than_eight_gpus_need_whole_nodes_of_one_cluster(acme, alice, fleet, big_quota) -> None:
    """Two whole nodes are free, but in different clusters, until the second cluster frees a second node."""
    frees_at = later(5)
    c1, c2 = fleet.nodes[:4], fleet.nodes[4:]
    fill(c1[1:], organization=acme, booked_by=alice, until=later(days=40))
    fill(c2[1:2], organization=acme, booked_by=alice, until=frees_at)
    fill(c2[2:], organization=acme, booked_by=alice, until=later(days=40))
    found = capacity_offerings(organization=acme, gpus=16, length=timedelta(hours=4))
    assert found[0].start == frees_at
    assert capacity_offerings(organization=acme, gpus=8, length=timedelta(hours=4))[0].start < frees_at


def test_unhealthy_gpus_and_nodes_out_of_service_are_never_offered(acme, alice, fleet, big_quota) -> None:
    fill(fleet.nodes[2:], organization=acme, booked_by=alice, until=later(days=40))
    Node.objects.filter(pk=fleet.nodes[0].pk).update(state="unhealthy")
    fleet.nodes[1].gpus.filter(index=0).update(health="failed")
    assert capacity_offerings(organization=acme, gpus=8, length=timedelta(hours=1))[0].start == later(days=40)
    assert capacity_offerings(organization=acme, gpus=4, length=timedelta(hours=1))[0].start < later(0)


def test_the_organizations_quota_delays_the_offering(acme, alice, fleet) -> None:
    acme.gpu_quota = 8
    acme.save(update_fields=["gpu_quota"])
    ends = later(3)
    fill(fleet.nodes[:1], organization=acme, booked_by=alice, until=ends, indices=[0, 1, 2, 3])
    assert capacity_offerings(organization=acme, gpus=4, length=timedelta(hours=1))[0].start < ends
    assert capacity_offerings(organization=acme, gpus=8, length=timedelta(hours=1))[0].start == ends
    assert capacity_offerings(organization=acme, gpus=16, length=timedelta(hours=1)) == []


def test_only_early_stage_organizations_are_offered_the_early_stage_pool(
    acme, globex, alice, fleet, big_quota
):
    Node.objects.filter(pk__in=[n.pk for n in fleet.nodes[:4]]).update(pool=Pool.EARLY_STAGE)
    fill(fleet.nodes[4:], organization=acme, booked_by=alice, until=later(days=10))
    globex_first = capacity_offerings(organization=globex, gpus=8, length=timedelta(hours=1))[0]
    assert globex_first.start == later(days=10) and globex_first.pool == Pool.GENERAL
    acme.early_stage_approved = True
    acme.save(update_fields=["early_stage_approved"])
    acme_first = capacity_offerings(organization=acme, gpus=8, length=timedelta(hours=1))[0]
    assert acme_first.start < later(0) and acme_first.pool == Pool.EARLY_STAGE


def test_offerings_cover_every_region_sorted_by_start_or_one_region_when_asked(api_as, alice, fleet) -> None:
    virginia = RegionFactory.create(code="us-va-1", name="Virginia 1", us_state="Virginia")
    NodeFactory.create(
        cluster=ClusterFactory.create(region=virginia, name="va1-c01"), hostname="va1-c01-n001"
    )
    found = offerings(api_as(alice), gpus=8, hours=2, per_region=3)
    assert {o["region"] for o in found} == {"us-tx-1", "us-va-1"} and len(found) == 6
    assert [o["start"] for o in found] == sorted(o["start"] for o in found)
    assert {o["region"] for o in offerings(api_as(alice), gpus=8, hours=2, region="us-va-1")} == {"us-va-1"}
    assert offerings(api_as(alice), gpus=16, hours=2, region="us-va-1") == []  # one node there


def test_offerings_start_within_the_asked_range(api_as, alice, fleet) -> None:
    earliest, latest = later(4), later(6)
    found = offerings(
        api_as(alice),
        gpus=1,
        hours=1,
        earliest_start=earliest.isoformat(),
        latest_start=latest.isoformat(),
        per_region=3,
    )
    assert [o["start"] for o in found] == [earliest.isoformat(), (earliest + timedelta(hours=1)).isoformat(),
                                           (earliest + timedelta(hours=2)).isoformat()]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"gpus": 0}, "gpus", "greater than or equal to 1"),
        ({"gpus": 3}, "gpus", "1, 2, 4 or 8 GPUs"),
        ({"gpus": 10_001}, "gpus", "less than or equal to 10000"),
        ({"hours": 0}, "hours", "greater than or equal to 1"),
        ({"hours": 24 * 91}, "hours", "at most 90 days"),
        ({"hours": 5_813_458_266_304_315_862}, "hours", "at most 90 days"),
        ({"region": "us-xx-9"}, "region", "No region has this code"),
        (
            {"earliest_start": later(5).isoformat(), "latest_start": later(4).isoformat()},
            "latest_start",
            "before",
        ),
        ({"earliest_start": later(days=200).isoformat()}, "earliest_start", "at most 180 days ahead"),
        ({"earliest_start": "tomorrow"}, "earliest_start", "Datetime has wrong format"),
        ({"per_region": 4}, "per_region", "less than or equal to 3"),
    ],
)
def test_bad_queries_get_a_400_naming_the_field(api_as, alice, fleet, query, field, message) -> None:
    response = api_as(alice).get("/api/v1/capacity/offerings/", {"gpus": 8, "hours": 2, **query})
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "invalid" and field in body["fields"], body
    assert message in str(body["fields"][field]), body


def test_offerings_need_a_role_that_books(api_as, fiona, fleet) -> None:
    assert api_as(fiona).get("/api/v1/capacity/offerings/", {"gpus": 8, "hours": 2}).status_code == 403


def test_booking_an_offering_books_exactly_that_window(api_as, alice, acme, fleet, big_quota) -> None:
    fill(fleet.nodes[1:], organization=acme, booked_by=alice, until=later(days=40))
    fill(fleet.nodes[:1], organization=acme, booked_by=alice, until=later(7))
    offer = offerings(api_as(alice), gpus=8, hours=2)[0]
    body = {
        "region": offer["region"],
        "gpus": 8,
        "kind": "reserved",
        "start": offer["start"],
        "end": offer["end"],
    }
    response = api_as(alice).post("/api/v1/leases/", body, format="json")
    assert response.status_code == 201, response.json()
    lease = Lease.objects.get(public_id=response.json()["id"])
    assert (lease.start, lease.end) == (later(7), later(9))
    assert [(n["hostname"], n["gpu_indices"]) for n in response.json()["nodes"]] == [
        ("tx1-c01-n001", list(range(8)))
    ]
    again = api_as(alice).post("/api/v1/leases/", body, format="json")
    assert again.status_code == 409 and again.json()["code"] == "no_capacity"
    assert again.json()["offerings"][0]["start"] == later(9).isoformat()  # fresh: after the one just booked


def test_a_409_no_capacity_carries_the_nearest_offerings_and_the_regions_free_now(
    api_as, alice, acme, fleet, big_quota
) -> None:
    virginia = RegionFactory.create(code="us-va-1", name="Virginia 1", us_state="Virginia")
    NodeFactory.create(
        cluster=ClusterFactory.create(region=virginia, name="va1-c01"), hostname="va1-c01-n001"
    )
    frees_at = later(1)
    fill(fleet.nodes, organization=acme, booked_by=alice, until=frees_at)
    response = api_as(alice).post("/api/v1/leases/", {"region": "us-tx-1", "gpus": 8, "kind": "on_demand"})
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "no_capacity" and body["max_gpus_available"] == 0
    assert body["regions_free_now"] == ["us-va-1"]
    assert len(body["offerings"]) == 3
    assert [o["region"] for o in body["offerings"]][:1] == ["us-va-1"]  # free now, so nearest
    assert frees_at.isoformat() in [o["start"] for o in body["offerings"]]
    assert "The nearest window that can be booked: us-va-1" in body["detail"]


def test_refused_bookings_are_recorded_as_demand(api_as, alice, acme, fleet) -> None:
    fill(fleet.nodes, organization=acme, booked_by=alice, until=later(days=3))
    acme.gpu_quota = 1000
    acme.save(update_fields=["gpu_quota"])
    assert api_as(alice).post("/api/v1/leases/", reserved(8, hours=3), format="json").status_code == 409
    acme.gpu_quota = 8
    acme.save(update_fields=["gpu_quota"])
    assert api_as(alice).post("/api/v1/leases/", reserved(8, hours=3), format="json").status_code == 403
    rows = list(
        DemandRecord.objects.order_by("at").values_list("reason", "gpus", "gpu_hours", "region__code")
    )
    assert rows == [
        ("no_capacity", 8, Decimal("24.000"), "us-tx-1"),
        ("quota_exceeded", 8, Decimal("24.000"), "us-tx-1"),
    ]


def test_a_quote_or_an_availability_check_is_not_demand(api_as, alice, acme, fleet, big_quota) -> None:
    fill(fleet.nodes, organization=acme, booked_by=alice, until=later(days=3))
    api_as(alice).get("/api/v1/availability/", {"region": "us-tx-1", "gpus": 8})
    api_as(alice).get("/api/v1/capacity/offerings/", {"gpus": 8, "hours": 2})
    assert DemandRecord.objects.count() == 0


def test_ceil_to_step_keeps_whole_minutes_and_rounds_up_the_rest() -> None:
    moment = later(0)
    assert ceil_to_step(moment) == moment
    assert ceil_to_step(moment + timedelta(seconds=1)) == moment + timedelta(minutes=1)


def test_a_size_no_cluster_can_hold_is_never_offered(acme, fleet, big_quota) -> None:
    assert capacity_offerings(organization=acme, gpus=40, length=timedelta(hours=1)) == []  # 4-node clusters
    assert capacity_offerings(organization=acme, gpus=32, length=timedelta(hours=1)) != []


def test_no_region_means_no_offerings(acme) -> None:
    assert Region.objects.count() == 0
    assert capacity_offerings(organization=acme, gpus=8, length=timedelta(hours=1)) == []


def test_offerings_are_priced_as_reserved_leases(acme, fleet, big_quota) -> None:
    found = capacity_offerings(organization=acme, gpus=2, length=timedelta(hours=1))[0]
    assert found.price_per_gpu_hour == Decimal("1.99") and found.total_price == Decimal("3.98")
