"""Journey: a new startup signs up, adds an SSH key, creates an API token and invites a colleague."""

import httpx
import pytest
from django.core import mail

from accounts.choices import Role
from accounts.models import ApiToken, Invitation, Membership, SshKey, User
from clusters.services.fleet import fleet_seed
from tests.accounts.helpers import ALICE_FINGERPRINT, ALICE_KEY
from tests.browser.harness import screenshot
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.browser


def test_a_new_startup_signs_up_adds_a_key_makes_a_token_and_invites_a_colleague(
    page, page_problems, live_server
) -> None:
    fleet_seed(nodes=12)
    page.goto("/")
    # 4 nodes in Texas, one of them in the early-stage pool: a visitor could book 24 GPUs now.
    assert page.locator('[data-region="us-tx-1"] [data-field="gpus_free_now"]').inner_text() == "24"
    screenshot(page, "01-home")
    screenshot(page, "01-home-phone", phone=True)

    page.get_by_role("link", name="Sign up").first.click()
    page.get_by_label("Work email").fill("nora@nebula.example")
    page.get_by_label("Your name").fill("Nora Nebula")
    page.get_by_label("Password").fill("a long passphrase for nebula")
    page.get_by_label("Organization").fill("Nebula Labs")
    page.get_by_label("Kind").select_option(label="Startup")
    screenshot(page, "02-sign-up")
    page.get_by_role("button", name="Sign up").click()
    # The welcome says what to do next; its first link adds a key.
    page.wait_for_url(f"{live_server.url}/welcome/")
    assert page.get_by_role("heading", name="Welcome to Voltpark, Nora Nebula").is_visible()
    screenshot(page, "02-welcome")

    main_nav = page.get_by_role("navigation", name="Main")
    assert main_nav.get_by_role("link", name="Organization").is_visible()
    page.locator("#next-steps").get_by_role("link", name="Add an SSH key").click()
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Public key").fill(ALICE_KEY)
    page.get_by_role("button", name="Add key").click()
    assert page.get_by_role("status").filter(has_text=ALICE_FINGERPRINT).is_visible()
    screenshot(page, "03-ssh-keys")

    main_nav.get_by_role("link", name="API tokens").click()
    page.get_by_label("Token name").fill("ci pipeline")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token").inner_text().strip()
    assert secret.startswith("vp_")
    screenshot(page, "04-api-token")
    api = httpx.get(f"{live_server.url}/api/v1/ssh-keys/", headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 200 and [k["fingerprint"] for k in api.json()] == [ALICE_FINGERPRINT]
    page.reload()  # shown once: a reload neither shows the secret again nor makes another token
    assert page.locator("#new-token").count() == 0
    assert ApiToken.objects.count() == 1

    main_nav.get_by_role("link", name="Organization").click()
    page.get_by_label("Email to invite").fill("omar@nebula.example")
    page.get_by_label("Role", exact=True).select_option(label="Member")
    page.get_by_role("button", name="Send invitation").click()
    assert page.get_by_role("status").filter(has_text="Invitation sent to omar@nebula.example").is_visible()
    assert page.locator('tr[data-invitation="omar@nebula.example"]').is_visible()
    screenshot(page, "05-organization")
    screenshot(page, "06-organization-phone", phone=True)

    nora = User.objects.get(email="nora@nebula.example")
    membership = Membership.objects.get(user=nora)
    assert (membership.organization.name, membership.role) == ("Nebula Labs", Role.OWNER)
    assert SshKey.objects.get(user=nora).fingerprint == ALICE_FINGERPRINT
    assert ApiToken.objects.get(user=nora).organization == membership.organization
    invitation = Invitation.objects.get(organization=membership.organization)
    assert (invitation.email, invitation.role, invitation.accepted_at) == (
        "omar@nebula.example",
        Role.MEMBER,
        None,
    )
    # The verification link sent at sign-up, then the invitation.
    assert [m.to for m in mail.outbox] == [["nora@nebula.example"], ["omar@nebula.example"]]
    assert page_problems == [], page_problems


def test_the_switcher_changes_organization_with_javascript(page, page_problems, live_server) -> None:
    acme = OrganizationFactory.create(name="Acme AI", slug="acme-ai")
    globex = OrganizationFactory.create(name="Globex Research", slug="globex")
    alice = UserFactory.create(email="alice@acme.example", full_name="Alice Archer")
    MembershipFactory.create(user=alice, organization=acme, role=Role.OWNER)
    MembershipFactory.create(user=alice, organization=globex, role=Role.FINANCE)

    page.goto("/login/")
    page.get_by_label("Email").fill("alice@acme.example")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Log in").click()
    page.goto("/account/tokens/")
    assert page.get_by_role("button", name="Switch").is_hidden()  # JS submits on change instead
    main_nav = page.get_by_role("navigation", name="Main")
    assert main_nav.get_by_role("link", name="Organization").is_visible()

    with page.expect_navigation():
        page.get_by_label("Organization", exact=True).select_option(label="Globex Research")
    assert page.url == f"{live_server.url}/account/tokens/"
    assert page.get_by_label("Organization", exact=True).input_value() == "globex"
    assert main_nav.get_by_role("link", name="Organization").count() == 0  # a finance member there
    screenshot(page, "07-switcher")
    assert page_problems == [], page_problems
