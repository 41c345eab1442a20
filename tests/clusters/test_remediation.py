"""Remediation: a lease never starts on a node out of service; a scheduled lease whose node fails is
moved before its start (same region, size, pool; one fabric above 8 GPUs) or failed, refunded and
offered alternatives; a running lease on a failed node gets a replacement, booked at once when its
owner asked for that, else offered (email, API, page), once."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db.models import Sum
from django.utils import timezone

from accounts.models import AuditEntry
from billing.models import LedgerEntry
from clusters.choices import GpuHealth, HealthEventKind, LeaseState, NodeState, Pool
from clusters.models import Lease, LeaseNotice, Node
from clusters.services.health import node_drain, node_health_fail
from clusters.services.lifecycle import EnforceReport, leases_start_due
from clusters.services.remediation import leases_remediate
from tests.clusters.helpers import fill, gpus_of, later, lease_on, nodes_of, overlapping_allocations, reserved


@pytest.fixture
def remediate(django_capture_on_commit_callbacks):
    """One remediation sweep, with what it does once committed (the emails) run at its end."""

    def sweep():
        with django_capture_on_commit_callbacks(execute=True):
            return leases_remediate()

    return sweep


def book(client, **kw):
    response = client.post("/api/v1/leases/", reserved(**kw), format="json")
    assert response.status_code == 201, response.json()
    return Lease.objects.get(public_id=response.json()["id"])


def fail_node(node: Node) -> None:
    gpu = node.gpus.get(index=0)
    node_health_fail(
        node_id=node.pk,
        problems={(HealthEventKind.XID, gpu.pk): "GPU 0 reported XID 79."},
        now=timezone.now(),
    )


def hostnames(lease: Lease) -> set[str]:
    return set(lease.allocations.filter(is_live=True).values_list("node__hostname", flat=True))


def test_a_scheduled_lease_whose_node_fails_moves_to_other_gpus_for_the_same_window(
    remediate, api_as, alice, acme, fleet
) -> None:
    lease = book(api_as(alice), gpus=8, start=later(0), hours=3)
    [old] = hostnames(lease)
    fail_node(Node.objects.get(hostname=old))
    report = remediate()
    assert report.replaced == [str(lease.public_id)]
    lease.refresh_from_db()
    assert lease.state == LeaseState.SCHEDULED and (lease.start, lease.end) == (later(0), later(3))
    [new] = hostnames(lease)
    assert new != old and Node.objects.get(hostname=new).state == NodeState.AVAILABLE
    assert lease.allocations.filter(is_live=True).count() == 8 and overlapping_allocations() == 0
    entry = AuditEntry.objects.get(action="lease.re_placed")
    assert entry.before["nodes"] == [old] and entry.after["nodes"] == [new]
    assert any("moved to healthy GPUs" in m.subject and new in m.body for m in mail.outbox)
    # The API shows where it is now, not where it was.
    shown = api_as(alice).get(f"/api/v1/leases/{lease.public_id}/").json()
    assert [n["hostname"] for n in shown["nodes"]] == [new]
    # A second sweep has nothing left to do.
    assert remediate().replaced == []


def test_a_drained_node_s_scheduled_leases_move_too(remediate, api_as, alice, stella, fleet) -> None:
    lease = book(api_as(alice), gpus=4, start=later(0), hours=2)
    [old] = hostnames(lease)
    node_drain(node=Node.objects.get(hostname=old), actor=stella, reason="Firmware update.")
    remediate()
    assert hostnames(lease) != {old} and len(hostnames(lease)) == 1


def test_a_multi_node_lease_moves_whole_onto_one_cluster(
    remediate, api_as, alice, acme, fleet, big_quota
) -> None:
    lease = book(api_as(alice), gpus=16, start=later(0), hours=2)
    old = hostnames(lease)
    fail_node(Node.objects.get(hostname=sorted(old)[0]))
    remediate()
    new = hostnames(lease)
    clusters = set(Node.objects.filter(hostname__in=new).values_list("cluster_id", flat=True))
    assert len(new) == 2 and len(clusters) == 1 and sorted(old)[0] not in new
    assert Node.objects.filter(hostname__in=new, state=NodeState.AVAILABLE).count() == 2


def test_it_stays_in_its_pool(remediate, api_as, alice, acme, bob, fleet) -> None:
    """An early-stage lease on a failed early-stage node is not moved into the general pool."""
    acme.early_stage_approved = True
    acme.save(update_fields=["early_stage_approved"])
    for node in fleet.nodes[4:]:
        Node.objects.filter(pk=node.pk).update(pool=Pool.EARLY_STAGE)
    lease = book(api_as(alice), gpus=8, start=later(0), hours=2)
    [old] = hostnames(lease)
    assert Node.objects.get(hostname=old).pool == Pool.EARLY_STAGE
    others = [node for node in fleet.nodes[4:] if node.hostname != old]
    fill(others, organization=acme, booked_by=bob, until=later(days=3))
    fail_node(Node.objects.get(hostname=old))
    report = remediate()  # the general pool's four nodes are free
    lease.refresh_from_db()
    assert report.failed == [str(lease.public_id)] and lease.state == LeaseState.FAILED


def test_when_nothing_fits_the_lease_fails_nothing_is_charged_and_alternatives_are_offered(
    remediate, api_as, alice, acme, bob, fleet
) -> None:
    lease = book(api_as(alice), gpus=8, start=later(0), hours=2)
    charged = LedgerEntry.objects.filter(lease=lease).aggregate(total=Sum("amount"))["total"]
    assert charged < 0  # a reserved lease is a commitment, charged when booked
    [old] = hostnames(lease)
    fill([n for n in fleet.nodes if n.hostname != old], organization=acme, booked_by=bob, until=later(5))
    fail_node(Node.objects.get(hostname=old))
    remediate()
    lease.refresh_from_db()
    assert lease.state == LeaseState.FAILED and "no other GPUs are free" in lease.state_reason
    assert lease.allocations.filter(is_live=True).count() == 0
    assert LedgerEntry.objects.filter(lease=lease).aggregate(total=Sum("amount"))["total"] == Decimal("0.00")
    [email] = [m for m in mail.outbox if "could not be moved" in m.subject]
    # The nearest window of the same size and length once the other nodes free, at five hours.
    assert f"{later(5):%Y-%m-%d %H:%M}" in email.body and "refunded" in email.body


def test_a_lease_never_starts_on_a_node_out_of_service(settings, alice, acme, fleet) -> None:
    start = timezone.now().replace(microsecond=0) - timedelta(seconds=5)
    node = fleet.nodes[0]
    lease = lease_on(
        gpus_of(node), organization=acme, booked_by=alice, start=start, end=start + timedelta(hours=2)
    )
    Node.objects.filter(pk=node.pk).update(state=NodeState.DRAINING)
    report = EnforceReport()
    leases_start_due(now=timezone.now(), report=report)
    lease.refresh_from_db()
    assert lease.state == LeaseState.SCHEDULED and report.started == 0 and report.failed == 0
    # Nor on a node in service with one GPU that is not healthy.
    Node.objects.filter(pk=node.pk).update(state=NodeState.AVAILABLE)
    node.gpus.filter(index=3).update(health=GpuHealth.FAILED)
    leases_start_due(now=timezone.now(), report=report)
    lease.refresh_from_db()
    assert lease.state == LeaseState.SCHEDULED and report.started == 0


def _running(fleet, acme, alice, **fields) -> Lease:
    start = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    return lease_on(
        gpus_of(fleet.nodes[0]),
        organization=acme,
        booked_by=alice,
        start=start,
        end=later(3),
        state=LeaseState.ACTIVE,
        **fields,
    )


def test_a_running_lease_on_a_failed_node_is_offered_a_replacement_once(
    remediate, api_as, alice, acme, fleet
) -> None:
    lease = _running(fleet, acme, alice)
    fail_node(fleet.nodes[0])
    first, second = remediate(), remediate()
    assert first.replacements_offered == [str(lease.pk)] and second.replacements_offered == []
    assert LeaseNotice.objects.filter(lease=lease, kind="replacement").count() == 1
    assert Lease.objects.filter(replaces=lease).count() == 0
    assert len([m for m in mail.outbox if "a replacement is offered" in m.subject]) == 1


def test_the_owner_books_the_offered_replacement_through_the_api(api_as, alice, acme, fleet) -> None:
    lease = _running(fleet, acme, alice)  # 8 GPUs: all of Acme's quota of 8
    fail_node(fleet.nodes[0])
    response = api_as(alice).post(f"/api/v1/leases/{lease.public_id}/replace/")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["replaces"] == str(lease.public_id) and body["gpus"] == 8 and body["region"] == "us-tx-1"
    assert body["end"] == later(3).isoformat()
    replacement = Lease.objects.get(public_id=body["id"])
    assert fleet.nodes[0].hostname not in nodes_of(replacement)
    again = api_as(alice).post(f"/api/v1/leases/{lease.public_id}/replace/")
    assert again.status_code == 409 and again.json()["code"] == "invalid_state"
    assert Lease.objects.filter(replaces=lease).count() == 1


def test_a_healthy_lease_cannot_be_replaced(api_as, alice, acme, fleet) -> None:
    lease = _running(fleet, acme, alice)
    response = api_as(alice).post(f"/api/v1/leases/{lease.public_id}/replace/")
    assert response.status_code == 409 and response.json()["code"] == "invalid_state"
    assert Lease.objects.filter(replaces=lease).count() == 0


def test_an_owner_who_asked_for_automatic_replacement_gets_one_booked_at_once(
    remediate, alice, acme, fleet
) -> None:
    lease = _running(fleet, acme, alice, replace_automatically=True)
    fail_node(fleet.nodes[0])
    report = remediate()
    [replacement] = Lease.objects.filter(replaces=lease)
    assert report.replacements_booked == [str(replacement.public_id)]
    assert replacement.state == LeaseState.SCHEDULED and replacement.gpus == 8 and replacement.end == later(3)
    assert replacement.replace_automatically and fleet.nodes[0].hostname not in nodes_of(replacement)
    assert remediate().replacements_booked == [] and Lease.objects.filter(replaces=lease).count() == 1
    assert any(
        "its replacement is booked" in m.subject and str(replacement.public_id) in m.body for m in mail.outbox
    )


def test_automatic_replacement_is_asked_for_when_booking(api_as, alice, fleet) -> None:
    response = api_as(alice).post(
        "/api/v1/leases/", reserved(gpus=1, replace_automatically=True), format="json"
    )
    assert response.status_code == 201 and response.json()["replace_automatically"] is True
    assert Lease.objects.get(public_id=response.json()["id"]).replace_automatically


def test_the_lease_page_offers_the_replacement_and_books_it(client_as, alice, acme, fleet) -> None:
    lease = _running(fleet, acme, alice)
    client = client_as("alice")
    assert "Book a replacement" not in client.get(f"/leases/{lease.public_id}/").content.decode()
    fail_node(fleet.nodes[0])
    assert "Book a replacement" in client.get(f"/leases/{lease.public_id}/").content.decode()
    response = client.post(f"/leases/{lease.public_id}/replace/")
    replacement = Lease.objects.get(replaces=lease)
    assert response.status_code == 302 and response["Location"] == f"/leases/{replacement.public_id}/"
    page = client.get(response["Location"]).content.decode()
    assert "This lease replaces" in page
