"""The lease pages: roles and tenants, nodes and SSH commands, charts, idleness, extend and release."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clusters.choices import LeaseKind, LeaseState
from clusters.models import Lease
from nodeagent.protocol import account_for_lease
from tests.clusters.helpers import active_lease, add_samples, gpus_of, lease_on, tx_node
from tests.factories import LeaseFactory, RegionFactory
from tests.helpers import PEOPLE, status_of

EXPECTED = {"alice": 200, "bob": 200, "fiona": 403, "charlie": 404, "stella": 403, "frank": 403}


@pytest.fixture
def lease(seeded_fleet, acme, alice) -> Lease:
    return active_lease(seeded_fleet, organization=acme, booked_by=alice)


@pytest.mark.parametrize("who", PEOPLE)
def test_the_lease_list_answers_each_role(client_as, lease, who) -> None:
    expected = {**EXPECTED, "charlie": 200}.get(who, "login")  # Charlie sees Globex's (empty) list
    response = client_as(who).get("/leases/")
    assert status_of(response) == expected
    if who == "charlie":
        assert str(lease.public_id) not in response.content.decode()


@pytest.mark.parametrize("who", PEOPLE)
@pytest.mark.parametrize("page", ["", "live/", "release/"])
def test_a_lease_page_answers_each_role_and_hides_it_from_other_organizations(
    client_as, lease, who, page
) -> None:
    response = client_as(who).get(f"/leases/{lease.public_id}/{page}")
    assert status_of(response) == EXPECTED.get(who, "login")


@pytest.mark.parametrize("action", ["release/", "extend/"])
def test_another_organization_cannot_change_a_lease(client_as, lease, action) -> None:
    response = client_as("charlie").post(f"/leases/{lease.public_id}/{action}", {"end": "2030-01-01T00:00"})
    assert response.status_code == 404
    lease.refresh_from_db()
    assert lease.end is None and lease.state == LeaseState.ACTIVE


def test_a_malformed_lease_id_is_not_found(client_as, lease) -> None:
    assert client_as("alice").get("/leases/not-a-uuid/").status_code == 404


def test_the_list_groups_leases_as_upcoming_active_and_past(client_as, seeded_fleet, acme, alice) -> None:
    running = active_lease(seeded_fleet, organization=acme, booked_by=alice)
    soon = LeaseFactory.create(organization=acme, booked_by=alice, region=RegionFactory.create())
    done = LeaseFactory.create(
        organization=acme, booked_by=alice, region=RegionFactory.create(), state=LeaseState.ENDED
    )
    html = client_as("bob").get("/leases/").content.decode()
    sections = {
        name: re.search(rf'<table id="leases-{name}">.*?</table>', html, re.S).group(0)
        for name in ("active", "upcoming", "past")
    }
    assert str(running.public_id) in sections["active"]
    assert str(soon.public_id) in sections["upcoming"]
    assert str(done.public_id) in sections["past"]


def test_the_lease_list_costs_the_same_queries_for_2_or_20_leases(
    client_as, seeded_fleet, acme, alice
) -> None:
    client = client_as("alice")
    region = RegionFactory.create()
    LeaseFactory.create_batch(2, organization=acme, booked_by=alice, region=region)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/leases/").status_code == 200
    LeaseFactory.create_batch(9, organization=acme, booked_by=alice, region=region)
    LeaseFactory.create_batch(9, organization=acme, booked_by=alice, region=region, state=LeaseState.ENDED)
    with CaptureQueriesContext(connection) as many:
        assert client.get("/leases/").status_code == 200
    assert len(many) == len(few)


def test_the_detail_shows_each_node_and_the_ssh_command_to_reach_it(client_as, lease) -> None:
    html = client_as("bob").get(f"/leases/{lease.public_id}/").content.decode()
    host = lease.allocations.first().node.hostname
    assert f"ssh {account_for_lease(str(lease.public_id))}@{host}" in html
    assert "0, 1, 2, 3, 4, 5, 6, 7" in html
    assert "runs until released" in html


def test_a_running_lease_shows_four_charts_and_polls_for_fresh_ones(client_as, lease, settings) -> None:
    settings.LEASE_PAGE_REFRESH_S = 7
    add_samples(
        lease, since=timezone.now() - timedelta(minutes=30), every=timedelta(minutes=1), utilization=87
    )
    html = client_as("alice").get(f"/leases/{lease.public_id}/live/").content.decode()
    for title in ("GPU utilization", "GPU memory used", "GPU temperature", "GPU power"):
        assert f">{title}</title>" in html
    assert html.count("<polyline") >= 4 * 8  # a line per GPU in each chart
    assert 'hx-trigger="every 7s"' in html
    assert "data-idle" not in html


def test_an_ended_lease_stops_polling(client_as, seeded_fleet, acme, alice) -> None:
    start = timezone.now() - timedelta(hours=3)
    ended = lease_on(
        gpus_of(tx_node(seeded_fleet)),
        organization=acme,
        booked_by=alice,
        start=start,
        state=LeaseState.ENDED,
    )
    html = client_as("alice").get(f"/leases/{ended.public_id}/").content.decode()
    assert "hx-trigger" not in html.split('id="lease-live"')[1].split(">")[0]
    assert "Release now" not in html


def test_a_lease_idle_for_an_hour_shows_a_notice(client_as, lease) -> None:
    add_samples(
        lease, since=timezone.now() - timedelta(minutes=70), every=timedelta(minutes=5), utilization=1
    )
    html = client_as("alice").get(f"/leases/{lease.public_id}/").content.decode()
    assert "data-idle" in html and "nearly idle" in html


def test_a_lease_started_minutes_ago_is_not_called_idle(client_as, seeded_fleet, acme, alice) -> None:
    young = active_lease(seeded_fleet, organization=acme, booked_by=alice, hours_ago=0.2)
    add_samples(young, since=young.start, every=timedelta(minutes=1), utilization=0)
    assert "data-idle" not in client_as("alice").get(f"/leases/{young.public_id}/").content.decode()


def test_the_release_page_states_the_cost_of_releasing_now(client_as, lease) -> None:
    html = client_as("alice").get(f"/leases/{lease.public_id}/release/").content.decode()
    text = re.search(r'<p id="cost-effect">(.*?)</p>', html, re.S).group(1)
    # 8 GPUs for 2 hours at $1.99 (a second more if the clock ticked over while the test ran)
    assert re.search(r"Releasing now stops billing at \d\d:\d\d \(UTC\)", text)
    assert re.search(r"you will have used 16\.00\d GPU-hours ≈ \$31\.8[45] at \$1\.99 per GPU-hour", text)


def test_releasing_stops_the_lease_now_and_says_when_billing_stopped(client_as, lease) -> None:
    client = client_as("bob")
    response = client.post(f"/leases/{lease.public_id}/release/")
    assert response.status_code == 302 and response["Location"] == f"/leases/{lease.public_id}/"
    lease.refresh_from_db()
    assert lease.end is not None and timezone.now() - lease.end < timedelta(seconds=5)
    assert all(a.period.upper == lease.end for a in lease.allocations.all())
    assert "Billing stopped at" in client.get(response["Location"]).content.decode()


def test_releasing_a_scheduled_lease_cancels_it(client_as, seeded_fleet, acme, alice) -> None:
    start = timezone.now() + timedelta(days=1)
    later = lease_on(gpus_of(tx_node(seeded_fleet), [0, 1]), organization=acme, booked_by=alice, start=start)
    page = client_as("alice").get(f"/leases/{later.public_id}/release/").content.decode()
    assert "nothing is billed" in page
    response = client_as("alice").post(f"/leases/{later.public_id}/release/")
    assert response.status_code == 302
    later.refresh_from_db()
    assert later.state == LeaseState.CANCELLED
    assert not later.allocations.filter(is_live=True).exists()


def test_release_is_protected_against_cross_site_posts(lease, alice) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(f"/leases/{lease.public_id}/release/").status_code == 403
    lease.refresh_from_db()
    assert lease.end is None


def reserved(seeded_fleet, acme, alice) -> Lease:
    start = (timezone.now() + timedelta(hours=1)).replace(second=0, microsecond=0)
    return lease_on(
        gpus_of(tx_node(seeded_fleet), [0, 1]),
        organization=acme,
        booked_by=alice,
        start=start,
        kind=LeaseKind.RESERVED,
    )


def test_extending_a_reserved_lease_reads_the_new_end_in_the_viewers_zone(
    client_as, seeded_fleet, acme, alice
) -> None:
    lease = reserved(seeded_fleet, acme, alice)
    new_end = lease.end + timedelta(hours=2)
    local = new_end.astimezone(timezone.get_fixed_timezone(-5 * 60)).strftime("%Y-%m-%dT%H:%M")
    response = client_as("alice").post(
        f"/leases/{lease.public_id}/extend/", {"end": local, "tz": "Etc/GMT+5"}
    )
    assert response.status_code == 302
    lease.refresh_from_db()
    assert lease.end == new_end
    assert all(a.period.upper == new_end for a in lease.allocations.all())


def test_an_extension_that_is_not_later_is_refused_with_a_message(
    client_as, seeded_fleet, acme, alice
) -> None:
    lease = reserved(seeded_fleet, acme, alice)
    before = lease.end
    client = client_as("alice")
    earlier = (before - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(f"/leases/{lease.public_id}/extend/", {"end": earlier, "tz": "UTC"})
    assert response.status_code == 302 and response["Location"] == f"/leases/{lease.public_id}/"
    html = client.get(f"/leases/{lease.public_id}/").content.decode()
    assert "New end: The new end must be later than the current end." in html
    lease.refresh_from_db()
    assert lease.end == before


def test_only_a_reserved_lease_offers_to_extend(client_as, lease) -> None:
    html = client_as("alice").get(f"/leases/{lease.public_id}/").content.decode()
    assert "Extend" not in html and "Release now" in html


def row_of(html: str, lease: Lease) -> str:
    return re.search(rf'<tr data-lease="{lease.public_id}">.*?</tr>', html, re.S).group(0)


def test_the_list_shows_each_leases_cost_and_its_region_by_name(client_as, seeded_fleet, acme, alice) -> None:
    running = active_lease(seeded_fleet, organization=acme, booked_by=alice)  # 8 GPUs for 2 h at $1.99
    node = tx_node(seeded_fleet)
    start = timezone.now().replace(microsecond=0) - timedelta(hours=5)
    ended = lease_on(
        gpus_of(node, [0]), organization=acme, booked_by=alice, start=start, state=LeaseState.ENDED
    )  # reserved 1 GPU for an hour, over: $1.99
    soon = timezone.now() + timedelta(days=2)
    upcoming = lease_on(
        gpus_of([n for n in seeded_fleet if n != node and n.hostname.startswith("tx1")][0], [0, 1]),
        organization=acme,
        booked_by=alice,
        start=soon,
        end=soon + timedelta(hours=3),
    )  # 2 GPUs × 3 h × $1.99 committed
    html = client_as("alice").get("/leases/").content.decode()
    assert re.search(r'data-field="cost">\$31\.8[45]<', row_of(html, running))
    assert 'data-field="cost">$1.99<' in row_of(html, ended)
    assert 'data-field="cost">$11.94<' in row_of(html, upcoming)
    for title in ("Cost so far", "Committed", "Cost"):
        assert f'<th scope="col">{title}</th>' in html
    assert "Texas 1" in row_of(html, running) and "us-tx-1" in row_of(html, running)


def test_an_ended_lease_shows_what_it_used_and_no_way_to_log_in(client_as, seeded_fleet, acme, alice) -> None:
    start = timezone.now().replace(microsecond=0) - timedelta(hours=3)
    ended = lease_on(
        gpus_of(tx_node(seeded_fleet)),
        organization=acme,
        booked_by=alice,
        start=start,
        state=LeaseState.ENDED,
    )
    html = client_as("alice").get(f"/leases/{ended.public_id}/").content.decode()
    assert account_for_lease(str(ended.public_id)) not in html
    assert "data-copy" not in html and "Used so far" not in html
    assert re.search(r'<dd data-field="used">8\.000 GPU-hours, \$15\.92</dd>', html)
    assert "The lease is over" in html
    running = client_as("alice").get(
        f"/leases/{active_lease(seeded_fleet, organization=acme, booked_by=alice).public_id}/"
    )
    assert "Used so far" in running.content.decode() and "data-copy" in running.content.decode()


def test_the_lease_page_names_the_region(client_as, lease) -> None:
    html = client_as("alice").get(f"/leases/{lease.public_id}/").content.decode()
    assert "8 GPUs in Texas 1 (us-tx-1)" in html


def test_each_chart_has_a_legend_and_a_table_of_its_numbers(client_as, lease) -> None:
    add_samples(
        lease, since=timezone.now() - timedelta(minutes=5), every=timedelta(minutes=1), utilization=42
    )
    html = client_as("alice").get(f"/leases/{lease.public_id}/live/").content.decode()
    assert html.count('<ul class="chart-legend">') == 4 and html.count('<details class="chart-numbers">') == 4
    table = re.search(r'<details class="chart-numbers">.*?</details>', html, re.S).group(0)
    assert all(f'<th scope="col">GPU {i}</th>' in table for i in range(8))
    assert "<td>42</td>" in table
