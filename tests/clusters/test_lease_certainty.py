"""What a lease can count on, in the API and on its page: how far it can be extended right now
(`extendable_until`) and its health (flagged, the open health events on its nodes, the SLA credit
accrued so far)."""

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clusters.choices import HealthEventKind, LeaseKind, LeaseState
from clusters.models import HealthEvent, Lease, LeaseRequest
from clusters.selectors.health import lease_health
from clusters.services.health import node_health_fail
from tests.clusters.helpers import gpus_of, later, lease_on, reserved


def book(client, **kw):
    response = client.post("/api/v1/leases/", reserved(**kw), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_lease_with_free_gpus_after_it_is_extendable_to_its_longest_length(api_as, alice, fleet) -> None:
    lease = book(api_as(alice), gpus=8, start=later(0), hours=2)
    longest = later(0) + settings.BOOKING_MAX_DURATION
    assert lease["extendable_until"] == longest.isoformat()
    shown = api_as(alice).get(f"/api/v1/leases/{lease['id']}/").json()
    assert shown["extendable_until"] == longest.isoformat()


def test_the_next_booking_on_its_gpus_limits_how_far_it_can_be_extended(
    api_as, alice, charlie, fleet
) -> None:
    mine = book(api_as(alice), gpus=8, start=later(0), hours=2)
    book(api_as(charlie), gpus=8, start=later(3), hours=2)  # the same node, after mine
    shown = api_as(alice).get(f"/api/v1/leases/{mine['id']}/").json()
    assert shown["extendable_until"] == later(3).isoformat()
    # What it says is what extending does: to that instant it extends, a minute later it does not.
    past = api_as(alice).post(
        f"/api/v1/leases/{mine['id']}/extend/", {"end": (later(3) + timedelta(minutes=1)).isoformat()}
    )
    assert past.status_code == 409
    fits = api_as(alice).post(f"/api/v1/leases/{mine['id']}/extend/", {"end": later(3).isoformat()})
    assert fits.status_code == 200 and fits.json()["extendable_until"] == later(3).isoformat()


def test_the_quota_limits_how_far_it_can_be_extended(api_as, alice, acme, fleet) -> None:
    first = book(api_as(alice), gpus=4, start=later(0), hours=2)
    book(api_as(alice), gpus=8, start=later(5), hours=2)  # 4 + 8 > the quota of 8 from then
    shown = api_as(alice).get(f"/api/v1/leases/{first['id']}/").json()
    assert shown["extendable_until"] == later(5).isoformat()
    refused = api_as(alice).post(
        f"/api/v1/leases/{first['id']}/extend/", {"end": (later(5) + timedelta(minutes=1)).isoformat()}
    )
    assert refused.status_code == 403 and refused.json()["code"] == "quota_exceeded"


def test_a_lease_that_cannot_be_extended_reads_its_own_end(api_as, alice, charlie, fleet) -> None:
    mine = book(api_as(alice), gpus=8, start=later(0), hours=2)
    book(api_as(charlie), gpus=8, start=later(2), hours=2)
    shown = api_as(alice).get(f"/api/v1/leases/{mine['id']}/").json()
    assert shown["extendable_until"] == shown["end"] == later(2).isoformat()


def test_on_demand_and_finished_leases_are_not_extendable(api_as, alice, fleet) -> None:
    client = api_as(alice)
    on_demand = client.post("/api/v1/leases/", {"region": "us-tx-1", "gpus": 1, "kind": "on_demand"}).json()
    assert on_demand["extendable_until"] is None
    cancelled = book(client, gpus=1, start=later(0), hours=2)
    client.post(f"/api/v1/leases/{cancelled['id']}/cancel/")
    listed = {lease["id"]: lease for lease in client.get("/api/v1/leases/").json()["results"]}
    assert listed[cancelled["id"]]["extendable_until"] is None
    assert listed[on_demand["id"]]["extendable_until"] is None


def test_a_healthy_lease_says_so(api_as, alice, fleet) -> None:
    lease = book(api_as(alice), gpus=8, start=later(0), hours=2)
    expected = {
        "flagged": False,
        "open_events": [],
        "sla_credit_gpu_hours": "0.000",
        "sla_credit_so_far": "0.00",
    }
    assert lease["health"] == expected
    assert api_as(alice).get(f"/api/v1/leases/{lease['id']}/").json()["health"] == expected


def _running_on(fleet, acme, alice, *, hours_ago: float) -> Lease:
    start = timezone.now().replace(microsecond=0) - timedelta(hours=hours_ago)
    return lease_on(
        gpus_of(fleet.nodes[0]),
        organization=acme,
        booked_by=alice,
        start=start,
        end=start + timedelta(hours=10),
        state=LeaseState.ACTIVE,
    )


def test_a_lease_on_a_failed_node_shows_the_open_event_and_the_credit_accrued(
    api_as, alice, acme, fleet
) -> None:
    lease = _running_on(fleet, acme, alice, hours_ago=3)
    gpu = fleet.nodes[0].gpus.get(index=2)
    failed_at = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    node_health_fail(
        node_id=fleet.nodes[0].pk,
        problems={(HealthEventKind.XID, gpu.pk): "GPU 2 reported XID 79."},
        now=failed_at,
    )
    health = api_as(alice).get(f"/api/v1/leases/{lease.public_id}/").json()["health"]
    assert health["flagged"] is True
    [event] = health["open_events"]
    assert event["node"] == fleet.nodes[0].hostname and event["gpu_index"] == 2 and event["kind"] == "xid"
    assert event["detail"] == "GPU 2 reported XID 79."
    # Eight GPUs for about an hour on the failing node, at $1.99 per GPU-hour.
    assert 7.99 <= float(health["sla_credit_gpu_hours"]) <= 8.1, health
    assert 15.9 <= float(health["sla_credit_so_far"]) <= 16.2, health


def test_overlapping_events_are_credited_once_and_ended_ones_only_while_open(alice, acme, fleet) -> None:
    lease = _running_on(fleet, acme, alice, hours_ago=5)
    now = timezone.now().replace(microsecond=0)
    node = fleet.nodes[0]
    for kind, began, ended in (
        (HealthEventKind.UNREACHABLE, now - timedelta(hours=4), now - timedelta(hours=2)),
        (HealthEventKind.OVERHEAT, now - timedelta(hours=3), now - timedelta(hours=1)),
    ):
        event = HealthEvent.objects.create(node=node, kind=kind, started_at=began, ended_at=ended)
        event.leases.add(lease)
    health = lease_health(lease, now)
    # Three hours (4 h ago to 1 h ago) of eight GPUs, not four: the events overlap for one hour.
    assert health.sla_gpu_seconds == 3 * 3600 * 8
    assert str(health.sla_credit) == "47.76"
    assert health.open_events == []


def test_another_nodes_events_and_time_outside_the_lease_are_not_credited(alice, acme, fleet) -> None:
    lease = _running_on(fleet, acme, alice, hours_ago=1)
    now = lease.start + timedelta(hours=1)  # not a second read of the clock: it may have ticked on
    HealthEvent.objects.create(
        node=fleet.nodes[1], kind=HealthEventKind.XID, started_at=now - timedelta(hours=3)
    )
    HealthEvent.objects.create(
        node=fleet.nodes[0],
        kind=HealthEventKind.XID,
        started_at=now - timedelta(hours=3),
        ended_at=now - timedelta(minutes=30),
    )
    health = lease_health(lease, now)
    assert health.sla_gpu_seconds == 30 * 60 * 8 and health.open_events == []


def test_the_lease_page_shows_its_health_and_how_far_it_can_be_extended(
    client_as, alice, acme, fleet
) -> None:
    lease = _running_on(fleet, acme, alice, hours_ago=2)
    gpu = fleet.nodes[0].gpus.get(index=5)
    node_health_fail(
        node_id=fleet.nodes[0].pk,
        problems={(HealthEventKind.ECC, gpu.pk): "GPU 5 has 3 uncorrectable ECC errors."},
        now=timezone.now() - timedelta(minutes=30),
    )
    page = client_as("alice").get(f"/leases/{lease.public_id}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "1 open health event on its nodes" in html and "GPU 5 has 3 uncorrectable ECC errors." in html
    assert "SLA credit so far" in html
    assert 'data-field="extendable-until"' in html and "you can extend it up to then" in html


def test_the_lease_page_says_when_a_lease_cannot_be_extended(
    client_as, alice, charlie, api_as, fleet
) -> None:
    mine = book(api_as(alice), gpus=8, start=later(0), hours=2)
    book(api_as(charlie), gpus=8, start=later(2), hours=2)
    html = client_as("alice").get(f"/leases/{mine['id']}/").content.decode()
    assert "It cannot be extended now" in html
    assert Lease.objects.get(public_id=mine["id"]).kind == LeaseKind.RESERVED


def test_a_booking_reads_the_gpus_of_queued_requests_once_and_answers_as_a_later_read(
    api_as, alice, acme, fleet
) -> None:
    # Its answer's extendable_until counts them as its lock read them, with the organization's row.
    LeaseRequest.objects.create(
        organization=acme, requested_by=alice, gpus=4, kind=LeaseKind.ON_DEMAND, not_after=later(24)
    )
    with CaptureQueriesContext(connection) as queries:
        lease = book(api_as(alice), gpus=4, start=later(0), hours=2)
    assert sum("clusters_leaserequest" in q["sql"] for q in queries.captured_queries) == 1
    shown = api_as(alice).get(f"/api/v1/leases/{lease['id']}/").json()
    assert lease["extendable_until"] == shown["extendable_until"]
