"""Staff pages of the fleet and of every organization's leases: roles, grid, drain and undrain, filters."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from clusters.choices import GpuHealth, HealthEventKind, LeaseKind, LeaseState, NodeState, Pool
from clusters.models import HealthEvent, Node
from tests.clusters.helpers import gpus_of, lease_on
from tests.factories import ClusterFactory, LeaseFactory, NodeFactory, OrganizationFactory, RegionFactory
from tests.helpers import csrf_client, queries_for

FLEET = "/staff/fleet/"
LEASES = "/staff/leases/"


@pytest.fixture
def node(db) -> Node:
    return NodeFactory.create(hostname="tx1-c01-n001", cluster__name="tx1-c01")


def node_url(node: Node, action: str = "") -> str:
    return f"{FLEET}nodes/{node.public_id}/{action + '/' if action else ''}"


@pytest.mark.parametrize(
    ("who", "status"),
    [("alice", 403), ("bob", 403), ("fiona", 403), ("charlie", 403), ("stella", 200), ("frank", 403)],
)
def test_fleet_node_and_lease_pages_answer_staff_admins_only(client, everyone, node, who, status) -> None:
    client.force_login(everyone[who])
    assert [client.get(url).status_code for url in (FLEET, node_url(node), LEASES)] == [status] * 3


def test_anonymous_visitors_are_sent_to_log_in(client, node) -> None:
    for url in (FLEET, node_url(node), LEASES):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_grid_shows_every_node_by_state_with_a_text_and_shape_cue(client, stella, node) -> None:
    sick = NodeFactory.create(
        hostname="tx1-c01-n002", cluster=node.cluster, state=NodeState.UNHEALTHY, pool=Pool.EARLY_STAGE
    )
    sick.gpus.filter(index=3).update(health=GpuHealth.FAILED)
    HealthEvent.objects.create(
        node=sick, gpu=sick.gpus.get(index=3), kind=HealthEventKind.XID, detail="GPU 3 reported XID 79."
    )
    client.force_login(stella)
    html = client.get(FLEET).content.decode()
    chip = re.search(r'<a class="node-chip ([^"]+)"[^>]*data-node="tx1-c01-n002".*?</a>', html, re.S)
    assert chip is not None
    assert set(chip.group(1).split()) == {"state-unhealthy", "pool-early_stage", "degraded"}
    assert "▲" in chip.group(
        0
    ) and "tx1-c01-n002: Unhealthy, 0 of 8 GPUs leased, Early-stage pool, 7 of 8 GPUs healthy" in chip.group(
        0
    )
    assert 'data-node="tx1-c01-n001" data-state="available"' in html
    assert "GPU 3 reported XID 79." in html  # the open health events list
    legend = re.search(r'<ul class="legend">.*?</ul>', html, re.S).group(0)
    assert all(label in legend for label in NodeState.labels)


def test_the_grid_shows_which_available_nodes_are_busy_partly_leased_or_free(
    client, stella, node, acme, alice
) -> None:
    partly = NodeFactory.create(hostname="tx1-c01-n002", cluster=node.cluster)
    free = NodeFactory.create(hostname="tx1-c01-n003", cluster=node.cluster)
    NodeFactory.create(hostname="tx1-c01-n004", cluster=node.cluster, state=NodeState.DRAINING)
    lease_on(gpus_of(node), organization=acme, booked_by=alice, state=LeaseState.ACTIVE)
    lease_on(gpus_of(partly, [0, 1]), organization=acme, booked_by=alice, state=LeaseState.ACTIVE)
    # A lease that has not started yet leaves the node free now.
    later = timezone.now() + timedelta(days=1)
    lease_on(
        gpus_of(free, [0]), organization=acme, booked_by=alice, start=later, end=later + timedelta(hours=1)
    )
    client.force_login(stella)
    html = client.get(FLEET).content.decode()

    def chip(hostname: str) -> str:
        return re.search(rf'<a class="node-chip [^"]+"[^>]*data-node="{hostname}".*?</a>', html, re.S).group(
            0
        )

    assert 'data-use="busy"' in chip("tx1-c01-n001") and "●" in chip("tx1-c01-n001")
    assert "8 of 8 GPUs leased" in chip("tx1-c01-n001")
    assert 'data-use="partly"' in chip("tx1-c01-n002") and "2 of 8 GPUs leased" in chip("tx1-c01-n002")
    assert 'data-use="free"' in chip("tx1-c01-n003") and "○" in chip("tx1-c01-n003")
    assert "◐" in chip("tx1-c01-n004")
    assert "3 available (1 fully leased, 1 partly leased, 1 free), 1 draining" in html
    legend = re.search(r'<ul class="legend">.*?</ul>', html, re.S).group(0)
    assert all(f"Available, {label}" in legend for label in ("free", "partly leased", "fully leased"))


def test_the_grid_filters_by_region_and_state(client, stella, node) -> None:
    virginia = ClusterFactory.create(
        region=RegionFactory.create(code="us-va-1", name="Virginia 1"), name="va1-c01"
    )
    NodeFactory.create(hostname="va1-c01-n001", cluster=virginia, state=NodeState.DRAINING)
    client.force_login(stella)
    only_virginia = client.get(FLEET, {"region": "us-va-1"}).content.decode()
    assert 'data-node="va1-c01-n001"' in only_virginia and 'data-node="tx1-c01-n001"' not in only_virginia
    draining = client.get(FLEET, {"state": "draining"}).content.decode()
    assert 'data-node="va1-c01-n001"' in draining and 'data-node="tx1-c01-n001"' not in draining


def test_the_node_page_shows_each_gpus_latest_reading_and_its_leases(
    client, stella, node, acme, alice
) -> None:
    node.gpus.filter(index=2).update(
        read_at=timezone.now(),
        utilization_pct=93,
        memory_used_bytes=60 * 1024**3,
        memory_total_bytes=80 * 1024**3,
        temperature_c=71,
        power_draw_w=612.4,
        power_limit_w=700,
        ecc_uncorrectable=0,
    )
    lease_on(gpus_of(node, [0, 1, 2, 3]), organization=acme, booked_by=alice, state=LeaseState.ACTIVE)
    client.force_login(stella)
    html = client.get(node_url(node)).content.decode()
    row = re.search(r'<tr data-gpu="2">.*?</tr>', html, re.S).group(0)
    for text in ["93 %", "60.0 / 80.0 GiB", "71 °C", "612 / 700 W"]:
        assert text in row
    leases = re.search(r'<table id="node-leases">.*?</table>', html, re.S).group(0)
    assert "Acme AI" in leases and "4 of 4" in leases
    running = re.search(r'<p class="running-leases".*?</p>', html, re.S).group(0)
    assert "Leased now: 4 of 8 GPUs, to Acme AI" in running


def test_an_unknown_node_is_a_404(client, stella) -> None:
    client.force_login(stella)
    assert client.get(f"{FLEET}nodes/not-a-node/").status_code == 404


def test_drain_and_undrain_need_a_reason_and_leave_an_audit_row(client, stella, node) -> None:
    client.force_login(stella)
    missing = client.post(node_url(node, "drain"), {"reason": ""})
    assert missing.status_code == 400 and "This field is required." in missing.content.decode()
    node.refresh_from_db()
    assert node.state == NodeState.AVAILABLE
    drained = client.post(node_url(node, "drain"), {"reason": "Replacing a fan"}, follow=True)
    assert "tx1-c01-n001 is draining" in drained.content.decode()
    node.refresh_from_db()
    assert (node.state, node.state_reason) == (NodeState.DRAINING, "Replacing a fan")
    client.post(node_url(node, "undrain"), {"reason": "Fan replaced"})
    node.refresh_from_db()
    assert (node.state, node.state_reason) == (NodeState.AVAILABLE, "Fan replaced")
    actions = list(
        AuditEntry.objects.filter(object_id=str(node.public_id)).order_by("pk").values_list("action", "actor")
    )
    assert actions == [("node.drained", stella.pk), ("node.undrained", stella.pk)]


def test_undraining_an_unhealthy_node_ends_its_open_events(client, stella, node) -> None:
    Node.objects.filter(pk=node.pk).update(state=NodeState.UNHEALTHY)
    event = HealthEvent.objects.create(node=node, kind=HealthEventKind.OVERHEAT, detail="hot")
    client.force_login(stella)
    assert "Undrain node" in client.get(node_url(node)).content.decode()
    client.post(node_url(node, "undrain"), {"reason": "Cooling fixed"})
    event.refresh_from_db()
    node.refresh_from_db()
    assert node.state == NodeState.AVAILABLE and event.ended_at is not None


def test_a_refused_change_is_explained(client, stella, node) -> None:
    Node.objects.filter(pk=node.pk).update(state=NodeState.OFFLINE)
    client.force_login(stella)
    response = client.post(node_url(node, "drain"), {"reason": "Try"}, follow=True)
    assert response.status_code == 200 and response.redirect_chain == [(node_url(node), 302)]
    assert "only an available node can be drained" in response.content.decode()
    node.refresh_from_db()
    assert node.state == NodeState.OFFLINE
    assert not AuditEntry.objects.filter(object_type="Node", object_id=str(node.public_id)).exists()


def test_draining_is_for_staff_admins_with_a_csrf_token(client, alice, stella, node) -> None:
    client.force_login(alice)
    assert client.post(node_url(node, "drain"), {"reason": "x"}).status_code == 403
    assert csrf_client(stella).post(node_url(node, "drain"), {"reason": "x"}).status_code == 403
    node.refresh_from_db()
    assert node.state == NodeState.AVAILABLE
    assert not AuditEntry.objects.filter(object_type="Node", object_id=str(node.public_id)).exists()


def test_the_fleet_costs_the_same_queries_for_2_or_20_nodes(client, stella) -> None:
    cluster = ClusterFactory.create()
    client.force_login(stella)
    for _ in range(2):
        HealthEvent.objects.create(node=NodeFactory.create(cluster=cluster), kind=HealthEventKind.UNREACHABLE)
    few = queries_for(client, FLEET)
    for _ in range(18):
        HealthEvent.objects.create(
            node=NodeFactory.create(cluster=ClusterFactory.create()), kind=HealthEventKind.UNREACHABLE
        )
    assert queries_for(client, FLEET) == few


def leases(count: int, **fields: object) -> None:
    for _ in range(count):
        LeaseFactory.create(**fields)


def lease_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-lease="([^"]+)">', html)


def test_every_organizations_leases_are_listed_and_filtered(
    client, stella, acme, globex, node, alice
) -> None:
    held = lease_on(gpus_of(node, [0, 1]), organization=acme, booked_by=alice, state=LeaseState.ACTIVE)
    other = LeaseFactory.create(
        organization=globex, kind=LeaseKind.ON_DEMAND, end=None, state=LeaseState.ENDED
    )
    virginia = LeaseFactory.create(organization=globex, region=RegionFactory.create(code="us-va-1"))
    client.force_login(stella)
    everything = client.get(LEASES).content.decode()
    assert set(lease_ids(everything)) == {str(held.public_id), str(other.public_id), str(virginia.public_id)}
    assert "tx1-c01-n001" in everything  # the node the lease holds
    cases = [
        ({"organization": "acme-ai"}, [held]),
        ({"state": "ended"}, [other]),
        ({"kind": "on_demand"}, [other]),
        ({"region": "us-va-1"}, [virginia]),
        ({"organization": "globex", "kind": "reserved"}, [virginia]),
    ]
    for query, expected in cases:
        assert lease_ids(client.get(LEASES, query).content.decode()) == [
            str(x.public_id) for x in expected
        ], query


def test_leases_are_paginated_keeping_the_filter(client, stella, globex) -> None:
    leases(51, organization=globex)
    client.force_login(stella)
    first = client.get(LEASES, {"organization": "globex"}).content.decode()
    assert len(lease_ids(first)) == 50 and "page 1 of 2" in first
    assert 'href="?organization=globex&amp;page=2"' in first
    second = client.get(LEASES, {"organization": "globex", "page": 2}).content.decode()
    assert len(lease_ids(second)) == 1


def test_the_lease_list_costs_the_same_queries_for_2_or_20_leases(client, stella, node, alice, acme) -> None:
    client.force_login(stella)
    start = timezone.now()
    for n in range(2):
        lease_on(gpus_of(node, [n]), organization=acme, booked_by=alice, start=start)
    few = queries_for(client, LEASES)
    for n in range(18):
        lease_on(
            gpus_of(NodeFactory.create(), [0]),
            organization=OrganizationFactory.create(),
            booked_by=alice,
            start=start + timedelta(minutes=n),
        )
    assert queries_for(client, LEASES) == few
