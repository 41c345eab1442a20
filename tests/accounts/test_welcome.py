"""Sign-up is never a dead end: the welcome page creates the organization or points to the invitation,
then says what to do next; pages for members send a person without an organization there."""

from accounts.choices import Role
from accounts.models import AuditEntry, Membership, User
from accounts.services.organizations import invitation_create
from tests.accounts.helpers import ALICE_KEY
from tests.factories import UserFactory

NORA = {"email": "nora@nebula.example", "full_name": "Nora Nebula", "password1": "a-long-enough-pass-9"}


def test_signing_up_without_an_organization_leads_to_the_welcome_that_creates_one(client, db) -> None:
    response = client.post("/signup/", NORA)
    assert response.status_code == 302 and response["Location"] == "/welcome/"
    page = client.get("/welcome/").content.decode()
    assert "Welcome to Voltpark, Nora Nebula" in page and "Create your organization" in page

    response = client.post("/welcome/", {"name": "Nebula Labs", "kind": "startup"}, follow=True)
    page = response.content.decode()
    membership = Membership.objects.get(user__email="nora@nebula.example")
    assert (membership.organization.name, membership.role) == ("Nebula Labs", Role.OWNER)
    assert "Nebula Labs is ready, and you are its owner" in page
    # What to do next: confirm the address, add a key, book; each a link.
    assert 'data-step="verify"' in page and 'href="/account/ssh-keys/">Add an SSH key' in page
    assert 'href="/book/">Book GPUs</a>' in page
    assert AuditEntry.objects.filter(
        action="organization.create", organization=membership.organization
    ).exists()
    # The organization is the one the session acts in: its pages answer.
    assert client.get("/book/").status_code == 200


def test_the_next_steps_tick_off_what_is_done(client, alice) -> None:
    client.force_login(alice)
    client.post("/account/ssh-keys/", {"name": "laptop", "public_key": ALICE_KEY})
    page = client.get("/welcome/").content.decode()
    assert "You have an SSH key" in page and "Add an SSH key" not in page


def test_a_page_for_members_sends_a_person_without_an_organization_to_the_welcome(client, db) -> None:
    client.force_login(UserFactory.create(email="lone@example.com"))
    for url in ["/book/", "/leases/", "/organization/"]:
        response = client.get(url, follow=True)
        assert response.redirect_chain == [("/welcome/", 302)], url
        assert "create yours, or accept your invitation" in response.content.decode()
    nav = client.get("/").content.decode()
    assert 'href="/welcome/"' in nav


def test_an_invited_person_is_told_where_their_invitation_is(client, alice, acme) -> None:
    invitation_create(actor=alice, organization=acme, email="omar@acme.example", role=Role.MEMBER)
    client.post("/signup/", {**NORA, "email": "omar@acme.example", "full_name": "Omar"})
    page = client.get("/welcome/").content.decode()
    assert "Acme AI invited omar@acme.example as Member (alice@acme.example)" in page
    assert "open the link in the invitation email" in page


def test_an_organization_without_a_name_is_refused_naming_the_field(client, db) -> None:
    client.force_login(UserFactory.create(email="lone@example.com"))
    response = client.post("/welcome/", {"name": "  ", "kind": "startup"})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_name"' in page and "This field is required" in page
    response = client.post("/welcome/", {"name": "Ok", "kind": "pirate"})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert not Membership.objects.filter(user__email="lone@example.com").exists()
    assert User.objects.count() == 1
