"""Demand and capacity for staff: the capacity page (GPUs committed per day for 90 days per region and
pool, pool utilization, unmet demand, queue depth), each region's early-stage share (previewed, then
applied: free nodes move at once, busy ones when their bookings end), and the fleet series of
/metrics."""

import functools
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from clusters.choices import LeaseKind, LeaseState, Pool
from clusters.models import GPU, Lease, Node, PoolShare
from clusters.selectors.demand import committed_per_day, pool_utilization, queue_depth, unmet_demand
from clusters.services.demand import demand_record
from clusters.services.lease_requests import lease_request_create
from clusters.services.pools import pool_shares_apply
from tests.clusters.helpers import gpus_of, lease_on
from tests.helpers import csrf_client

CAPACITY = "/staff/capacity/"
SHARE = "/staff/capacity/share/"


def midnight(days: int = 0):
    return timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=days)


@pytest.fixture
def book(alice, acme) -> Callable[..., Lease]:
    """Acme's lease on exactly these GPUs, booked by Alice (tests.clusters.helpers.lease_on)."""
    return functools.partial(lease_on, organization=acme, booked_by=alice)


@pytest.fixture
def running(book) -> Callable[[list[GPU]], Lease]:
    """Acme's lease on these GPUs, active from an hour ago to an hour from now."""

    def run(gpus: list[GPU]) -> Lease:
        now = timezone.now()
        return book(
            gpus, start=now - timedelta(hours=1), end=now + timedelta(hours=1), state=LeaseState.ACTIVE
        )

    return run


@pytest.mark.parametrize(("who", "status"), [("alice", 403), ("fiona", 403), ("stella", 200), ("frank", 403)])
def test_the_capacity_page_answers_staff_admins_only(client, everyone, fleet, who, status) -> None:
    client.force_login(everyone[who])
    assert client.get(CAPACITY).status_code == status
    assert client.post(SHARE, {"region": "us-tx-1", "percent": "50"}).status_code == status


def test_committed_gpus_per_day_count_each_day_s_share_of_each_booking(book, fleet) -> None:
    Node.objects.filter(pk=fleet.nodes[7].pk).update(pool=Pool.EARLY_STAGE)
    node = fleet.nodes[0]
    # All of tomorrow on 8 GPUs; twelve hours of the day after on 4; a day in the early-stage pool.
    book(gpus_of(node), start=midnight(1), end=midnight(2))
    book(
        gpus_of(node, [0, 1, 2, 3]),
        start=midnight(2) + timedelta(hours=6),
        end=midnight(2) + timedelta(hours=18),
    )
    book(gpus_of(fleet.nodes[7]), start=midnight(3), end=midnight(4))
    pools = {p.pool: p for p in committed_per_day() if p.region.code == "us-tx-1"}
    general, early = pools[Pool.GENERAL], pools[Pool.EARLY_STAGE]
    assert len(general.committed) == 90 and general.committed[0][0] == midnight().date()
    assert [value for _, value in general.committed[1:4]] == [8.0, 2.0, 0.0]
    assert [value for _, value in early.committed[1:5]] == [0.0, 0.0, 8.0, 0.0]
    assert (general.gpus, early.gpus) == (56, 8)


def test_pool_utilization_compares_the_early_stage_pool_with_general(book, running, fleet) -> None:
    for node in fleet.nodes[6:]:
        Node.objects.filter(pk=node.pk).update(pool=Pool.EARLY_STAGE)
    now = timezone.now()
    running(gpus_of(fleet.nodes[6]))
    book(gpus_of(fleet.nodes[0], [0, 1]), start=now + timedelta(hours=1))
    use = {u.pool: u for u in pool_utilization()}
    assert (use[Pool.EARLY_STAGE].in_use, use[Pool.EARLY_STAGE].gpus, use[Pool.EARLY_STAGE].percent) == (
        8,
        16,
        50.0,
    )
    assert (use[Pool.GENERAL].in_use, use[Pool.GENERAL].gpus) == (0, 48)


def test_unmet_demand_and_the_queue_show_per_region_and_day(alice, acme, fleet) -> None:
    demand_record(
        organization=acme,
        region=fleet.region,
        reason="no_capacity",
        kind=LeaseKind.RESERVED,
        gpus=16,
        start=timezone.now(),
        end=timezone.now() + timedelta(hours=3),
    )
    lease_request_create(user=alice, organization=acme, gpus=4, kind=LeaseKind.RESERVED, hours=5)
    lease_request_create(user=alice, organization=acme, gpus=2, kind=LeaseKind.ON_DEMAND, region=fleet.region)
    regions, days = unmet_demand()
    assert regions == ["us-tx-1", "any"] and len(days) == 30
    assert days[0].gpu_hours == {"us-tx-1": Decimal("50.000"), "any": Decimal("20")}  # 48 refused + 2 queued
    assert all(not day.gpu_hours for day in days[1:])
    assert {(q.region, q.requests, q.gpus) for q in queue_depth()} == {("any", 1, 4), ("us-tx-1", 1, 2)}


def test_the_page_shows_the_figures(book, client_as, fleet) -> None:
    book(gpus_of(fleet.nodes[0]), start=midnight(1), end=midnight(2))
    html = client_as("stella").get(CAPACITY).content.decode()
    assert "GPUs committed per day in us-tx-1" in html and "peak general 8.0 of 64 GPUs" in html
    assert 'id="utilization"' in html and 'id="unmet-demand"' in html and "Nothing is queued." in html
    assert "not set (nodes stay where they are)" in html


def test_a_share_is_previewed_first_and_changes_nothing(book, client_as, fleet) -> None:
    fleet_busy = fleet.nodes[5]
    book(gpus_of(fleet_busy), start=midnight(2), end=midnight(3))
    response = client_as("stella").post(SHARE, {"region": "us-tx-1", "percent": "37.5"})
    html = response.content.decode()
    # 3 of 8 nodes, the free ones from the highest hostname down.
    assert response.status_code == 200 and "3 of its 8 nodes in the early-stage pool (now 0)" in html
    assert 'data-moves-now="3"' in html and 'data-waiting="0"' in html
    assert "(tx1-c02-n001, tx1-c02-n003, tx1-c02-n004)" in html  # n002 carries a booking: skipped
    assert not Node.objects.filter(pool=Pool.EARLY_STAGE).exists() and not PoolShare.objects.exists()
    assert 'name="apply"' in html and "Apply" in html


def test_applying_moves_free_nodes_now_and_busy_ones_when_they_free(book, client_as, stella, fleet) -> None:
    now = timezone.now()
    busy = fleet.nodes[7]  # tx1-c02-n004: the first to move, but booked until later
    lease = book(
        gpus_of(busy),
        start=now - timedelta(hours=1),
        end=now + timedelta(hours=2),
        state=LeaseState.ACTIVE,
    )
    client = client_as("stella")
    preview = client.post(SHARE, {"region": "us-tx-1", "percent": "50"}).content.decode()
    assert 'data-moves-now="4"' in preview and 'data-waiting="0"' in preview
    response = client.post(SHARE, {"region": "us-tx-1", "percent": "50", "apply": "True"})
    assert response.status_code == 302
    early = set(Node.objects.filter(pool=Pool.EARLY_STAGE).values_list("hostname", flat=True))
    assert early == {"tx1-c02-n003", "tx1-c02-n002", "tx1-c02-n001", "tx1-c01-n004"}
    assert PoolShare.objects.get().early_stage_share == Decimal("0.500")
    entry = AuditEntry.objects.get(action="region.pool_share_set")
    assert entry.actor == stella and entry.after["early_stage_share"] == "0.500"
    # Back to 25 %: two early-stage nodes return, from the lowest hostname up.
    client.post(SHARE, {"region": "us-tx-1", "percent": "25", "apply": "True"})
    early = set(Node.objects.filter(pool=Pool.EARLY_STAGE).values_list("hostname", flat=True))
    assert early == {"tx1-c02-n003", "tx1-c02-n002"}
    # At 62.5 % the busy node is wanted: it waits for its lease, then a sweep moves it.
    client.post(SHARE, {"region": "us-tx-1", "percent": "62.5", "apply": "True"})
    assert Node.objects.get(pk=busy.pk).pool == Pool.GENERAL
    assert Node.objects.filter(pool=Pool.EARLY_STAGE).count() == 5
    assert pool_shares_apply(region="us-tx-1") == []
    lease.allocations.update(period=(now - timedelta(hours=1), now - timedelta(minutes=1)))
    assert pool_shares_apply(region="us-tx-1") == []  # the share is met without it
    PoolShare.objects.update(early_stage_share=Decimal("0.75"))
    assert pool_shares_apply(region="us-tx-1") == ["tx1-c02-n004"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"region": "us-tx-1", "percent": "150"}, "percent"),
        ({"region": "us-tx-1", "percent": "-1"}, "percent"),
        ({"region": "us-xx-9", "percent": "50"}, "region"),
        ({"region": "us-tx-1"}, "percent"),
    ],
)
def test_a_bad_share_is_refused_naming_the_field_and_changes_nothing(client_as, fleet, body, field) -> None:
    response = client_as("stella").post(SHARE, body)
    assert response.status_code == 400
    assert f'id="id_{field}_helptext"' in response.content.decode() or "error" in response.content.decode()
    assert response.context["form"].errors.get(field)
    assert not PoolShare.objects.exists() and not Node.objects.filter(pool=Pool.EARLY_STAGE).exists()


def test_a_share_form_posted_without_its_token_is_refused(stella, fleet) -> None:
    assert csrf_client(stella).post(SHARE, {"region": "us-tx-1", "percent": "50"}).status_code == 403


def test_metrics_export_free_gpus_the_queue_refusals_and_leases_by_state(
    book, running, client_as, alice, acme, fleet, big_quota
) -> None:
    Node.objects.filter(pk=fleet.nodes[7].pk).update(pool=Pool.EARLY_STAGE)
    now = timezone.now()
    running(gpus_of(fleet.nodes[0]))
    book(gpus_of(fleet.nodes[1], [0, 1]), start=now + timedelta(days=1))
    demand_record(
        organization=acme,
        region=fleet.region,
        reason="no_capacity",
        kind=LeaseKind.ON_DEMAND,
        gpus=8,
        start=now,
        end=None,
    )
    lease_request_create(user=alice, organization=acme, gpus=2, kind=LeaseKind.ON_DEMAND, region=fleet.region)
    text = client_as("stella").get("/metrics").getvalue().decode()
    # 7 general nodes less the one leased now and two GPUs booked tomorrow (on-demand would hold them).
    assert 'voltpark_gpus_free{pool="general",region="us-tx-1"} 46.0' in text
    assert 'voltpark_gpus_free{pool="early_stage",region="us-tx-1"} 8.0' in text
    assert 'voltpark_lease_requests_queued{region="us-tx-1"} 1.0' in text
    assert 'voltpark_lease_requests_queued_gpus{region="us-tx-1"} 2.0' in text
    assert 'voltpark_bookings_refused_total{reason="no_capacity"} 1.0' in text
    assert 'voltpark_bookings_refused_total{reason="quota_exceeded"} 0.0' in text
    assert 'voltpark_leases{state="active"} 1.0' in text and 'voltpark_leases{state="scheduled"} 1.0' in text
