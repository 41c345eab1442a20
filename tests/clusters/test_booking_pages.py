"""The booking page: who may see it, booking through the form, its live check and the calendar."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from accounts.services.ssh_keys import ssh_key_add
from clusters.choices import LeaseKind, LeaseState
from clusters.models import Lease
from tests.clusters.helpers import SSH_KEY, fill, gpus_of, later, lease_on
from tests.helpers import PEOPLE, status_of

EXPECTED = {"alice": 200, "bob": 200, "fiona": 403, "charlie": 200, "stella": 403, "frank": 403}


@pytest.mark.parametrize("who", PEOPLE)
@pytest.mark.parametrize("url", ["/book/", "/book/check/?region=us-tx-1&gpus=8&kind=on_demand"])
def test_the_booking_page_answers_each_role(client_as, seeded_fleet, who, url) -> None:
    assert status_of(client_as(who).get(url)) == EXPECTED.get(who, "login")


def on_demand(**extra: str) -> dict[str, str]:
    return {"region": "us-tx-1", "gpus": "8", "kind": "on_demand", "tz": "UTC", **extra}


def key_of(user) -> str:
    """The id of the user's SSH key (the factories give everyone one), ticked as the page pre-ticks it."""
    return str(user.ssh_keys.get().public_id)


def test_booking_on_demand_creates_the_lease_and_redirects_to_it(client_as, seeded_fleet, alice) -> None:
    key = ssh_key_add(user=alice, name="laptop", public_key=SSH_KEY)
    response = client_as("alice").post("/book/", on_demand(ssh_keys=str(key.public_id)))
    lease = Lease.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/leases/{lease.public_id}/"
    assert (lease.gpus, lease.kind, lease.state) == (8, LeaseKind.ON_DEMAND, LeaseState.SCHEDULED)
    assert lease.end is None
    assert lease.allocations.filter(is_live=True).count() == 8
    assert lease.ssh_public_keys == [key.public_key]
    assert lease.booked_by == alice


def test_reserved_times_are_read_in_the_viewers_zone_and_kept_in_utc(client_as, seeded_fleet, bob) -> None:
    paris = ZoneInfo("Europe/Paris")
    day = (timezone.now() + timedelta(days=3)).astimezone(paris).date()
    fields = {"kind": "reserved", "tz": "Europe/Paris", "start": f"{day}T09:00", "end": f"{day}T13:30"}
    browser = client_as("bob")
    response = browser.post("/book/", on_demand(**fields, ssh_keys=key_of(bob)))
    assert response.status_code == 302
    lease = Lease.objects.get()
    assert lease.start == datetime(day.year, day.month, day.day, 9, tzinfo=paris).astimezone(UTC)
    assert lease.end - lease.start == timedelta(hours=4, minutes=30)
    assert browser.session["time_zone"] == "Europe/Paris"  # the lease pages show times in it
    assert "09:00" in browser.get(response["Location"]).content.decode()


def test_a_size_that_cannot_be_booked_is_refused_on_the_gpus_field(client_as, seeded_fleet) -> None:
    response = client_as("alice").post("/book/", on_demand(gpus="3"))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "Book 1, 2, 4 or 8 GPUs" in errors["gpus"][0]
    assert 'data-error-for="gpus"' in response.content.decode()
    assert Lease.objects.count() == 0


def test_more_gpus_than_are_free_names_what_would_fit(client_as, seeded_fleet, acme, alice) -> None:
    acme.gpu_quota = 100
    acme.save(update_fields=["gpu_quota"])
    response = client_as("alice").post("/book/", on_demand(gpus="24", ssh_keys=key_of(alice)))
    assert response.status_code == 200
    assert "the largest lease that fits is 16 GPUs" in response.context["form"].errors["gpus"][0]
    assert Lease.objects.count() == 0


def test_over_the_quota_is_refused_on_the_gpus_field(client_as, seeded_fleet, alice) -> None:
    response = client_as("alice").post("/book/", on_demand(gpus="16", ssh_keys=key_of(alice)))
    assert response.status_code == 200
    assert "your organization's quota is 8" in response.context["form"].errors["gpus"][0]
    assert Lease.objects.count() == 0


def test_an_end_before_the_start_is_refused_on_the_end_field(client_as, seeded_fleet) -> None:
    day = (timezone.now() + timedelta(days=2)).date()
    fields = {"kind": "reserved", "start": f"{day}T10:00", "end": f"{day}T09:00"}
    response = client_as("alice").post("/book/", on_demand(**fields))
    assert response.status_code == 200
    assert response.context["form"].errors["end"] == ["The end must be after the start."]
    assert Lease.objects.count() == 0


def test_a_reserved_lease_without_times_names_both_fields(client_as, seeded_fleet) -> None:
    errors = client_as("alice").post("/book/", on_demand(kind="reserved")).context["form"].errors
    assert set(errors) == {"start", "end"}


def test_an_unknown_time_zone_is_refused(client_as, seeded_fleet) -> None:
    errors = client_as("alice").post("/book/", on_demand(tz="Mars/Olympus")).context["form"].errors
    assert errors["tz"] == ["Unknown time zone 'Mars/Olympus'."]


def test_someone_elses_ssh_key_cannot_be_installed(client_as, seeded_fleet, charlie) -> None:
    key = ssh_key_add(user=charlie, name="charlie", public_key=SSH_KEY)
    response = client_as("alice").post("/book/", on_demand(ssh_keys=str(key.public_id)))
    assert response.status_code == 200
    assert "ssh_keys" in response.context["form"].errors
    assert Lease.objects.count() == 0


def test_the_form_is_protected_against_cross_site_posts(seeded_fleet, alice) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/book/", on_demand()).status_code == 403
    assert Lease.objects.count() == 0


def test_the_check_says_it_fits_with_the_price_and_the_quota_left(client_as, seeded_fleet) -> None:
    html = client_as("alice").get("/book/check/", on_demand(gpus="4")).content.decode()
    assert 'data-fits="yes"' in html
    assert "16 GPUs are free in that window" in html
    assert "$9.96 per hour ($2.49 per GPU-hour)" in html
    assert "8 of 8 GPUs in that window" in html
    assert "<html" not in html  # a fragment for htmx, not a page


def test_the_check_says_what_fits_instead_when_it_does_not(client_as, seeded_fleet, acme) -> None:
    acme.gpu_quota = 100
    acme.save(update_fields=["gpu_quota"])
    html = client_as("alice").get("/book/check/", on_demand(gpus="24")).content.decode()
    assert 'data-fits="no"' in html
    assert "Only 16 GPUs are free in that window; the largest lease that fits is 16 GPUs." in html


def test_the_check_prices_a_reserved_window_and_warns_over_quota(client_as, seeded_fleet) -> None:
    day = (timezone.now() + timedelta(days=2)).date()
    query = on_demand(gpus="16", kind="reserved", start=f"{day}T10:00", end=f"{day}T12:00")
    html = client_as("alice").get("/book/check/", query).content.decode()
    assert "$63.68 for 2 hours" in html  # 16 GPUs × 2 h × $1.99
    assert "Over quota" in html and "may add at most 8 GPUs" in html


def test_the_check_lists_errors_by_field(client_as, seeded_fleet) -> None:
    html = client_as("alice").get("/book/check/", on_demand(gpus="5")).content.decode()
    assert 'data-error-for="gpus"' in html and "<strong>GPUs</strong>" in html


def test_the_page_shows_the_fourteen_day_calendar_of_each_region(
    client_as, seeded_fleet, alice, acme
) -> None:
    html = client_as("alice").get("/book/").content.decode()
    assert "Free GPUs per hour, next 14 days" in html
    # One line per region, named as people know it, with its code.
    assert len(re.findall(r"<g><title>[^<]+ \(us-[a-z]{2}-1\): latest", html)) == 3
    assert 'hx-get="/book/check/"' in html and 'hx-trigger="change, input changed delay:300ms"' in html
    assert 'data-fits="yes"' in html  # the check is filled in for the first view


def test_a_check_that_does_not_fit_offers_the_nearest_windows_as_buttons_that_book_them(
    client_as, fleet, acme, alice, big_quota
) -> None:
    frees_at = later(2)
    fill(fleet.nodes, organization=acme, booked_by=alice, until=frees_at)
    key = ssh_key_add(user=alice, name="laptop", public_key=SSH_KEY)
    client = client_as("alice")
    query = {
        "region": "us-tx-1",
        "gpus": "8",
        "kind": "reserved",
        "tz": "Europe/Paris",
        "ssh_keys": key.public_id,
    }
    start = (frees_at - timedelta(hours=1)).astimezone(ZoneInfo("Europe/Paris"))
    query |= {
        "start": start.strftime("%Y-%m-%dT%H:%M"),
        "end": (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"),
    }
    html = client.get("/book/check/", query).content.decode()
    local = frees_at.astimezone(ZoneInfo("Europe/Paris"))
    end = local + timedelta(hours=3)
    # The end shows its day only when it is not the start's (a window that crosses midnight in Paris).
    label = (
        f"Book {local:%a %H:%M}–{end:%H:%M}"
        if end.date() == local.date()
        else f"Book {local:%a %H:%M}–{end:%a %H:%M}"
    )
    label += " in Texas 1 for $47.76"
    assert label in html
    button = html[html.index("<form", html.index("data-offerings")) : html.index(label)]
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', button))
    assert fields["start"] == f"{local:%Y-%m-%dT%H:%M}" and fields["ssh_keys"] == str(key.public_id)
    response = client.post("/book/", fields)
    assert response.status_code == 302, response.context["form"].errors
    lease = Lease.objects.get(public_id=response["Location"].split("/")[2])
    assert (lease.start, lease.end, lease.kind) == (frees_at, frees_at + timedelta(hours=3), "reserved")
    assert lease.ssh_public_keys == [key.public_key]


def test_a_check_that_fits_offers_nothing_else(client_as, fleet) -> None:
    html = client_as("alice").get("/book/check/", on_demand()).content.decode()
    assert "data-offerings" not in html


def reserve_each_node_from_hour(fleet, acme, alice, first: int) -> datetime:
    """Node i reserved for two hours from `first` + i hours on: nothing is free for good; the last
    node stays free the longest, until the instant returned."""
    now = timezone.now().replace(second=0, microsecond=0)
    for i, node in enumerate(fleet.nodes):
        start = now + timedelta(hours=first + i)
        lease_on(
            gpus_of(node), organization=acme, booked_by=alice, start=start, end=start + timedelta(hours=2)
        )
    return now + timedelta(hours=first + len(fleet.nodes) - 1)


def form_of_button(html: str, marker: str) -> dict[str, str]:
    """The hidden fields of the one-button form whose button carries `marker`."""
    button = html.index(marker)
    return dict(re.findall(r'name="(\w+)" value="([^"]*)"', html[html.rindex("<form", 0, button) : button]))


def test_open_ended_on_demand_that_does_not_fit_is_offered_on_demand_until_buttons_that_book_it(
    client_as, fleet, acme, alice, charlie
) -> None:
    until = reserve_each_node_from_hour(fleet, acme, alice, first=3)
    client = client_as("charlie")
    html = client.get("/book/check/", on_demand(tz="Europe/Paris", ssh_keys=key_of(charlie))).content.decode()
    local = until.astimezone(ZoneInfo("Europe/Paris"))
    label = f"Book on-demand now in Texas 1 until {local:%a %H:%M} at $"
    assert label in html
    fields = form_of_button(html, label)
    assert fields["until"] == f"{local:%Y-%m-%dT%H:%M}" and fields["kind"] == "on_demand"
    response = client.post("/book/", fields)
    assert response.status_code == 302, response.context["form"].errors
    lease = Lease.objects.get(organization__slug="globex")
    assert (lease.kind, lease.end) == (LeaseKind.ON_DEMAND, until)
    assert lease.allocations.filter(is_live=True, node=fleet.nodes[-1]).count() == 8


def test_an_on_demand_lease_until_a_time_is_priced_by_the_hour_and_committed_to_nothing(
    client_as, fleet
) -> None:
    until = later(3)
    html = client_as("alice").get("/book/check/", on_demand(until=f"{until:%Y-%m-%dT%H:%M}")).content.decode()
    assert 'data-fits="yes"' in html
    assert f"as it runs, until {until:%a %b %-d %H:%M} (UTC) when it ends" in html
    assert 'data-field="commitment"' not in html  # on-demand is not paid when booked


def test_an_until_too_soon_is_refused_on_the_until_field(client_as, fleet, alice) -> None:
    soon = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=5)
    response = client_as("alice").post(
        "/book/", on_demand(until=f"{soon:%Y-%m-%dT%H:%M}", ssh_keys=key_of(alice))
    )
    assert response.status_code == 200 and not Lease.objects.exists()
    assert "A lease lasts at least" in response.context["form"].errors["until"][0]


def test_an_until_left_in_the_form_does_not_bound_a_reserved_lease(client_as, fleet, alice) -> None:
    start = later()
    fields = {
        "kind": "reserved",
        "start": f"{start:%Y-%m-%dT%H:%M}",
        "end": f"{start + timedelta(hours=2):%Y-%m-%dT%H:%M}",
    }
    response = client_as("alice").post(
        "/book/", on_demand(**fields, until=f"{later(9):%Y-%m-%dT%H:%M}", ssh_keys=key_of(alice))
    )
    assert response.status_code == 302
    assert Lease.objects.get().end == start + timedelta(hours=2)


@pytest.mark.parametrize(("ticked", "expected"), [({"replace_automatically": "on"}, True), ({}, False)])
def test_the_automatic_replacement_box_is_kept_on_the_lease(
    client_as, fleet, alice, ticked, expected
) -> None:
    response = client_as("alice").post("/book/", on_demand(ssh_keys=key_of(alice), **ticked))
    assert response.status_code == 302
    assert Lease.objects.get().replace_automatically is expected


def test_the_offering_buttons_keep_the_automatic_replacement_box(
    client_as, fleet, acme, alice, big_quota
) -> None:
    fill(fleet.nodes, organization=acme, booked_by=alice, until=later(2))
    html = (
        client_as("alice")
        .get(
            "/book/check/",
            on_demand(
                kind="reserved",
                start=f"{later(1):%Y-%m-%dT%H:%M}",
                end=f"{later(4):%Y-%m-%dT%H:%M}",
                replace_automatically="on",
            ),
        )
        .content.decode()
    )
    assert form_of_button(html, "data-offering=")["replace_automatically"] == "on"
