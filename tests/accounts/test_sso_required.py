"""An owner requires single sign-on: a member signed in with a password is sent to sign in with (or
link) the provider before any organization page answers; the API answers 403 `sso_required` to their
session and to tokens made before the requirement; other organizations are untouched."""

import pytest
from allauth.socialaccount.models import SocialAccount

from accounts.models import AuditEntry, Organization
from tests.accounts.helpers import log_in
from tests.accounts.sso_provider import Person, sign_in_with
from tests.helpers import api_client_for

ALICE_AT_GOOGLE = Person(uid="1001", email="alice@acme.example", name="Alice")
BOB_AT_GOOGLE = Person(uid="1002", email="bob@acme.example", name="Bob")


@pytest.fixture
def acme_requires_google(client, provider, acme, alice, bob) -> Organization:
    """Alice links her Google account and requires Google of Acme's members."""
    log_in(client, alice)
    sign_in_with(client, provider, "google", ALICE_AT_GOOGLE, process="connect")
    answer = client.post("/organization/sso/require/", {"sso_provider": "google"})
    assert answer.status_code == 302
    client.logout()
    acme.refresh_from_db()
    return acme


def test_an_owner_requires_a_provider_and_it_is_audited(acme_requires_google, alice) -> None:
    assert acme_requires_google.sso_provider == "google" and acme_requires_google.sso_required_since
    entry = AuditEntry.objects.get(action="organization.sso_require")
    assert (entry.actor, entry.before, entry.after) == (
        alice,
        {"sso_provider": ""},
        {"sso_provider": "google"},
    )


def test_an_owner_cannot_require_a_provider_they_have_not_linked(client, provider, acme, alice) -> None:
    log_in(client, alice)
    answer = client.post("/organization/sso/require/", {"sso_provider": "github"}, follow=True)
    assert "Link your own GitHub account first" in answer.content.decode()
    acme.refresh_from_db()
    assert (
        acme.sso_provider == "" and not AuditEntry.objects.filter(action="organization.sso_require").exists()
    )


def test_nobody_can_require_a_provider_that_is_switched_off(client, acme, alice) -> None:
    log_in(client, alice)
    answer = client.post("/organization/sso/require/", {"sso_provider": "google"}, follow=True)
    assert "Select a valid choice" in answer.content.decode()
    acme.refresh_from_db()
    assert acme.sso_provider == ""


def test_members_and_finance_cannot_change_the_requirement(client, provider, acme, bob) -> None:
    SocialAccount.objects.create(user=bob, provider="google", uid="1002")
    log_in(client, bob)
    assert client.post("/organization/sso/require/", {"sso_provider": "google"}).status_code == 403
    acme.refresh_from_db()
    assert acme.sso_provider == ""


@pytest.mark.parametrize("url", ["/", "/leases/", "/organization/", "/account/tokens/", "/billing/"])
def test_a_member_signed_in_with_a_password_is_sent_to_sign_in_with_the_provider(
    client, acme_requires_google, bob, url
) -> None:
    log_in(client, bob)
    answer = client.get(url)
    assert answer.status_code == 302 and answer["Location"] == f"/organization/sso/?next={url}"
    page = client.get(answer["Location"])
    assert page.status_code == 403
    assert "Acme AI asks its members to sign in with Google" in page.content.decode()
    assert "Link your account with Google" in page.content.decode()


def test_the_api_refuses_a_password_session_and_a_token_made_before(
    client, acme_requires_google, bob
) -> None:
    log_in(client, bob)
    answer = client.get("/api/v1/leases/")
    assert answer.status_code == 403
    assert (
        answer.json()["code"] == "sso_required"
        and "Acme AI requires signing in with Google" in answer.json()["detail"]
    )
    made = client.post("/api/v1/tokens/", {"name": "ci"}, content_type="application/json")
    assert made.status_code == 403 and made.json()["code"] == "sso_required"


def test_a_token_made_before_the_requirement_stops_answering(provider, acme, alice, bob, client) -> None:
    old = api_client_for(bob, acme)
    assert old.get("/api/v1/leases/").status_code == 200
    SocialAccount.objects.create(user=bob, provider="google", uid="1002")
    log_in(client, alice)
    sign_in_with(client, provider, "google", ALICE_AT_GOOGLE, process="connect")
    client.post("/organization/sso/require/", {"sso_provider": "google"})

    answer = old.get("/api/v1/leases/")
    assert answer.status_code == 403 and answer.json()["code"] == "sso_required"
    assert "make a new token" in answer.json()["detail"]
    assert api_client_for(bob, acme).get("/api/v1/leases/").status_code == 200  # made after, Bob linked


def test_a_token_of_a_member_who_never_linked_the_provider_does_not_answer(acme_requires_google, bob) -> None:
    answer = api_client_for(bob, acme_requires_google).get("/api/v1/leases/")
    assert answer.status_code == 403 and answer.json()["code"] == "sso_required"


def test_linking_the_provider_from_the_page_opens_the_organization(
    client, provider, acme_requires_google, bob
) -> None:
    log_in(client, bob)
    answer = sign_in_with(client, provider, "google", BOB_AT_GOOGLE, process="connect", next="/leases/")
    assert answer.status_code == 302 and answer["Location"] == "/leases/"
    assert client.get("/leases/").status_code == 200
    assert client.get("/api/v1/leases/").status_code == 200
    assert AuditEntry.objects.filter(action="sso.link", actor=bob, after__provider="google").exists()

    # Next time, a password alone is not enough again; signing in with Google is.
    client.logout()
    log_in(client, bob)
    assert client.get("/leases/").status_code == 302
    client.logout()
    sign_in_with(client, provider, "google", BOB_AT_GOOGLE)
    assert client.get("/leases/").status_code == 200


def test_another_organization_is_untouched(client, acme_requires_google, charlie) -> None:
    log_in(client, charlie)
    assert client.get("/leases/").status_code == 200
    assert api_client_for(charlie).get("/api/v1/leases/").status_code == 200


def test_a_member_may_still_log_out_and_switch_to_another_organization(
    client, acme_requires_google, bob, globex
) -> None:
    from accounts.choices import Role
    from accounts.models import Membership

    Membership.objects.create(user=bob, organization=globex, role=Role.MEMBER)
    log_in(client, bob)
    switched = client.post("/organization/switch/", {"slug": "globex", "next": "/leases/"})
    assert switched["Location"] == "/leases/"
    assert client.get("/leases/").status_code == 200
    assert client.post("/logout/").status_code == 302
