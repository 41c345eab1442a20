"""Single sign-on with GitHub and Google through allauth's providers, against a stand-in for the
providers' endpoints on loopback (tests/accounts/sso_provider.py): off until configured, sign-up and
sign-in, never a takeover of an account by its address, a forged state refused, every link audited."""

from urllib.parse import urlsplit

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount

from accounts.models import AuditEntry, User
from tests.accounts.helpers import log_in
from tests.accounts.sso_provider import CLIENTS, Person, at_provider, sign_in_with

DANA = Person(uid="4242", email="dana@startup.example", name="Dana Diaz")


def test_providers_are_off_until_their_client_id_is_set(client, db) -> None:
    assert client.post("/github/login/").status_code == 404
    assert client.post("/google/login/").status_code == 404
    page = client.get("/login/").content.decode()
    assert "Sign in with GitHub" not in page and "Sign in with Google" not in page


def test_the_log_in_page_offers_each_provider_switched_on(client, provider) -> None:
    page = client.get("/login/").content.decode()
    assert "Sign in with GitHub" in page and "Sign in with Google" in page


@pytest.mark.parametrize("name", ["github", "google"])
def test_a_new_person_signs_up_with_a_provider(client, provider, name) -> None:
    answer = sign_in_with(client, provider, name, DANA)
    assert answer.status_code == 302 and answer["Location"] == "/welcome/"  # as after any sign-up
    dana = User.objects.get(email=DANA.email)
    assert client.session["_auth_user_id"] == str(dana.pk)
    assert EmailAddress.objects.get(user=dana).verified  # the provider vouches for the address
    assert SocialAccount.objects.get(user=dana).uid == DANA.uid
    exchange = next(c for c in provider.calls if c["method"] == "POST")
    assert exchange["form"]["client_secret"] == CLIENTS[name][1]
    assert AuditEntry.objects.get(action="user.login", actor=dana).after["method"] == "signup"
    assert AuditEntry.objects.get(action="sso.link", actor=dana).after["provider"] == name


@pytest.mark.parametrize("name", ["github", "google"])
def test_a_provider_account_with_an_existing_address_does_not_sign_into_that_account(
    client, provider, alice, name
) -> None:
    answer = sign_in_with(client, provider, name, Person(uid="7", email=alice.email, name="Mallory"))
    assert "_auth_user_id" not in client.session
    assert not SocialAccount.objects.exists()
    assert User.objects.filter(email=alice.email).count() == 1
    # allauth asks for another address to make a new account with; the same one is refused.
    assert answer["Location"] == "/3rdparty/signup/"
    again = client.post("/3rdparty/signup/", {"email": alice.email})
    assert "Please sign in to that account first, then connect your" in again.content.decode()
    assert "_auth_user_id" not in client.session and not SocialAccount.objects.exists()


def test_a_forged_state_is_refused(client, provider) -> None:
    provider.person = DANA
    start = client.post("/github/login/")
    back = urlsplit(at_provider(start["Location"].replace("state=", "state=forged")))
    answer = client.get(f"{back.path}?{back.query}")
    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(email=DANA.email).exists()
    assert 400 <= answer.status_code < 500


def test_a_member_links_a_provider_and_signs_in_with_it_from_then_on(client, provider, alice) -> None:
    log_in(client, alice)
    linked = sign_in_with(
        client, provider, "google", Person(uid="11", email="alice@gmail.example", name="A"), process="connect"
    )
    assert linked.status_code == 302
    assert SocialAccount.objects.get(user=alice, provider="google").uid == "11"
    assert AuditEntry.objects.get(action="sso.link", actor=alice).after["provider"] == "google"

    client.post("/logout/")
    assert AuditEntry.objects.filter(action="user.logout", actor=alice).exists()
    sign_in_with(client, provider, "google", Person(uid="11", email="alice@gmail.example", name="A"))
    assert client.session["_auth_user_id"] == str(alice.pk)
