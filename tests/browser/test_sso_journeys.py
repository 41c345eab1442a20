"""Journeys of single sign-on in Chromium, against the stand-in for GitHub and Google on loopback
(tests/accounts/sso_provider.py): the browser itself follows allauth's POST to the provider and the
provider's redirect back, under the pages' real content security policy and cookies.

- A founder with no account signs up with GitHub from the log-in page and lands on the welcome page,
  signed in, their address verified by the provider.
- A member of an organization that requires Google logs in with a password, is stopped on the
  single sign-on page, links Google there and reaches the page they asked for.
"""

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.utils import timezone

from accounts.models import AuditEntry, User
from tests.accounts.sso_provider import Person

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's


def test_a_founder_signs_up_with_github_from_the_log_in_page(
    page, page_problems, live_server, provider
) -> None:
    provider.person = Person(uid="4242", email="dana@startup.example", name="Dana Diaz")
    page.goto("/login/")
    page.get_by_role("button", name="Sign in with GitHub").click()
    page.wait_for_url(f"{live_server.url}/welcome/")
    assert page.get_by_role("heading", level=1).inner_text() == "Welcome to Voltpark, Dana Diaz"
    dana = User.objects.get(email="dana@startup.example")
    assert EmailAddress.objects.get(user=dana).verified
    assert SocialAccount.objects.get(user=dana, provider="github").uid == "4242"
    assert AuditEntry.objects.get(action="user.login", actor=dana).after["method"] == "signup"
    # The browser went to the provider and back: the code was exchanged by the platform, server side.
    assert [call["path"] for call in provider.calls if call["method"] == "GET"][0].endswith("/authorize")
    assert page_problems == [], page_problems


def test_a_member_links_the_required_provider_on_the_sign_on_page_and_goes_on(
    page, page_problems, live_server, provider, acme, bob
) -> None:
    acme.sso_provider, acme.sso_required_since = "google", timezone.now()
    acme.save(update_fields=["sso_provider", "sso_required_since"])
    provider.person = Person(uid="77", email="bob@gmail.example", name="Bob")

    page.goto("/leases/")
    page.get_by_label("Email").fill(bob.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    # Signed in with a password only: the organization's pages wait for Google.
    page.wait_for_url("**/organization/sso/?next=/leases/")
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in with Google"

    page.get_by_role("button", name="Link your account with Google").click()
    page.wait_for_url(f"{live_server.url}/leases/")
    assert page.get_by_role("heading", level=1).is_visible()
    assert SocialAccount.objects.get(user=bob, provider="google").uid == "77"
    assert AuditEntry.objects.get(action="sso.link", actor=bob).after["provider"] == "google"
    # The sign-on page answers 403 (its organization's pages refuse until then), which Chromium logs;
    # nothing else went wrong.
    stopped = f"403 {live_server.url}/organization/sso/?next=/leases/"
    assert page_problems == [
        stopped,
        "console: Failed to load resource: the server responded with a status of 403 (Forbidden)",
    ]
