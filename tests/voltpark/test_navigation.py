"""The navigation shows each person only what their role allows."""

import re

import pytest

from accounts.choices import Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

NAV = re.compile(r'<nav class="main-nav".*?</nav>', re.S)


def nav_labels(client) -> set[str]:
    nav = NAV.search(client.get("/").content.decode())
    assert nav is not None
    return set(re.findall(r'<a href="[^"]+"[^>]*>([^<]+)</a>', nav.group(0)))


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (
            "alice",
            {
                "Book GPUs",
                "Leases",
                "Queued requests",
                "Billing",
                "Organization",
                "SSH keys",
                "API tokens",
                "Two-factor",
            },
        ),
        (
            "bob",
            {
                "Book GPUs",
                "Leases",
                "Queued requests",
                "Organization",
                "SSH keys",
                "API tokens",
                "Two-factor",
            },
        ),
        ("fiona", {"Billing", "API tokens", "Two-factor"}),
        (
            "charlie",
            {
                "Book GPUs",
                "Leases",
                "Queued requests",
                "Billing",
                "Organization",
                "SSH keys",
                "API tokens",
                "Two-factor",
            },
        ),
        (
            "stella",
            {
                "Fleet",
                "Early-stage queue",
                "All leases",
                "Capacity",
                "Admin",
                "SSH keys",
                "API tokens",
                "Two-factor",
            },
        ),
        ("frank", {"Finance", "SSH keys", "API tokens", "Two-factor"}),
    ],
)
def test_the_navigation_shows_only_the_pages_the_role_allows(client, everyone, who, expected) -> None:
    client.force_login(everyone[who])
    assert nav_labels(client) == expected


def test_staff_without_a_second_factor_see_no_staff_pages_until_they_set_one_up(client, db) -> None:
    client.force_login(UserFactory.create(email="sam@voltpark.example", is_staff=True))
    assert nav_labels(client) == {"SSH keys", "API tokens", "Two-factor"}


def test_an_anonymous_visitor_sees_log_in_and_sign_up(client, db) -> None:
    assert nav_labels(client) == {"Log in", "Sign up"}


def test_the_current_page_is_marked(client, alice) -> None:
    client.force_login(alice)
    page = client.get("/account/ssh-keys/").content.decode()
    assert re.search(r'<a href="/account/ssh-keys/" aria-current="page">SSH keys</a>', page)


def test_the_switcher_appears_for_people_in_several_organizations(client, alice, globex) -> None:
    client.force_login(alice)
    assert 'id="org-switch"' not in client.get("/").content.decode()
    MembershipFactory.create(user=alice, organization=globex, role=Role.FINANCE)
    page = client.get("/").content.decode()
    assert 'id="org-switch"' in page and '<label for="org-switch">' in page


def test_switching_changes_the_organization_and_the_navigation(client, alice, globex) -> None:
    MembershipFactory.create(user=alice, organization=globex, role=Role.FINANCE)
    client.force_login(alice)
    response = client.post("/organization/switch/", {"slug": "globex", "next": "/account/tokens/"})
    assert response["Location"] == "/account/tokens/"
    assert client.session["organization_slug"] == "globex"
    assert nav_labels(client) == {"Billing", "API tokens", "Two-factor"}  # a finance member in Globex
    assert client.get("/organization/").status_code == 403


def test_switching_never_redirects_to_another_site(client, alice, globex) -> None:
    MembershipFactory.create(user=alice, organization=globex)
    client.force_login(alice)
    response = client.post("/organization/switch/", {"slug": "globex", "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.session["organization_slug"] == "globex"


def test_the_viewer_costs_one_query_however_many_organizations(client, alice) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(alice)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/account/ssh-keys/").status_code == 200
    for _ in range(10):
        MembershipFactory.create(user=alice, organization=OrganizationFactory.create())
    with CaptureQueriesContext(connection) as many:
        response = client.get("/account/ssh-keys/")
    assert response.status_code == 200 and 'id="org-switch"' in response.content.decode()
    assert len(many) == len(few)
