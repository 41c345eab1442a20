"""The organization settings pages: members and roles, invitations, by role and organization."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.choices import Role
from accounts.models import AuditEntry, Invitation, Membership
from accounts.services.organizations import invitation_accept, invitation_create
from tests.factories import MembershipFactory, UserFactory

PEOPLE = ["alice", "bob", "fiona", "charlie", "stella", "frank"]


@pytest.fixture
def everyone(alice, bob, fiona, charlie, stella, frank):
    return {"alice": alice, "bob": bob, "fiona": fiona, "charlie": charlie, "stella": stella, "frank": frank}


@pytest.mark.parametrize(
    ("who", "status"),
    [("alice", 200), ("bob", 200), ("fiona", 403), ("charlie", 200), ("stella", 403), ("frank", 403)],
)
def test_the_organization_page_answers_owners_and_members_only(client, everyone, who, status) -> None:
    client.force_login(everyone[who])
    response = client.get("/organization/")
    assert response.status_code == status
    if who == "charlie":
        assert "Globex" in response.content.decode() and "alice@acme.example" not in response.content.decode()


def test_an_anonymous_visitor_is_sent_to_log_in(client, db) -> None:
    response = client.get("/organization/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_finance_member_is_told_why_the_page_is_refused(client, fiona) -> None:
    client.force_login(fiona)
    response = client.get("/organization/")
    assert response.status_code == 403 and "does not allow this page" in response.content.decode()


@pytest.mark.parametrize("who", PEOPLE)
@pytest.mark.parametrize("url", ["/account/ssh-keys/", "/account/tokens/"])
def test_personal_pages_answer_every_signed_in_person(client, everyone, who, url) -> None:
    client.force_login(everyone[who])
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("url", ["/account/ssh-keys/", "/account/tokens/"])
def test_personal_pages_send_anonymous_visitors_to_log_in(client, db, url) -> None:
    assert client.get(url).status_code == 302


def test_the_owner_changes_a_members_role(client, alice, bob, acme) -> None:
    client.force_login(alice)
    response = client.post(
        "/organization/members/role/", {"email": bob.email, "role": Role.FINANCE}, follow=True
    )
    assert "bob@acme.example is now Finance" in response.content.decode()
    assert Membership.objects.get(user=bob, organization=acme).role == Role.FINANCE
    assert AuditEntry.objects.filter(action="membership.set_role", actor=alice).exists()


def test_the_last_owner_cannot_step_down_and_is_told_why(client, alice, bob, acme) -> None:
    client.force_login(alice)
    response = client.post(
        "/organization/members/role/", {"email": alice.email, "role": Role.MEMBER}, follow=True
    )
    page = response.content.decode()
    assert "An organization must keep at least one owner." in page and 'role="alert"' in page
    assert Membership.objects.get(user=alice, organization=acme).role == Role.OWNER


def test_the_last_owner_cannot_be_removed(client, alice, acme) -> None:
    client.force_login(alice)
    response = client.post("/organization/members/remove/", {"email": alice.email}, follow=True)
    assert "at least one owner" in response.content.decode()
    assert Membership.objects.filter(user=alice, organization=acme).exists()


def test_the_owner_removes_a_member(client, alice, bob, acme) -> None:
    client.force_login(alice)
    response = client.post("/organization/members/remove/", {"email": bob.email}, follow=True)
    assert "bob@acme.example was removed" in response.content.decode()
    assert not Membership.objects.filter(user=bob, organization=acme).exists()


def test_an_owner_with_a_co_owner_may_leave(client, alice, acme) -> None:
    MembershipFactory.create(organization=acme, role=Role.OWNER)
    client.force_login(alice)
    response = client.post("/organization/members/remove/", {"email": alice.email})
    assert response.status_code == 302 and response["Location"] == "/"
    assert not Membership.objects.filter(user=alice, organization=acme).exists()


@pytest.mark.parametrize("who", ["bob", "fiona"])
def test_members_and_finance_cannot_change_roles_or_remove(client, everyone, acme, who) -> None:
    client.force_login(everyone[who])
    alice = everyone["alice"]
    assert (
        client.post("/organization/members/role/", {"email": alice.email, "role": "member"}).status_code
        == 403
    )
    assert client.post("/organization/members/remove/", {"email": alice.email}).status_code == 403
    assert Membership.objects.get(user=alice, organization=acme).role == Role.OWNER


def test_another_organizations_member_is_a_404(client, alice, charlie, globex) -> None:
    client.force_login(charlie)
    assert (
        client.post("/organization/members/role/", {"email": alice.email, "role": "member"}).status_code
        == 404
    )
    assert client.post("/organization/members/remove/", {"email": alice.email}).status_code == 404
    assert Membership.objects.get(user=alice).role == Role.OWNER


def test_anonymous_posts_are_sent_to_log_in(client, alice) -> None:
    assert client.post("/organization/members/remove/", {"email": alice.email}).status_code == 302
    assert Membership.objects.filter(user=alice).exists()


def test_the_owner_invites_and_sees_the_pending_invitation(client, alice, acme) -> None:
    client.force_login(alice)
    response = client.post("/organization/", {"email": "dan@acme.example", "role": Role.MEMBER}, follow=True)
    page = response.content.decode()
    assert "Invitation sent to dan@acme.example" in page and 'data-invitation="dan@acme.example"' in page
    assert Invitation.objects.filter(organization=acme, email="dan@acme.example").count() == 1


def test_inviting_a_member_again_names_the_field(client, alice, bob, acme) -> None:
    client.force_login(alice)
    response = client.post("/organization/", {"email": bob.email, "role": Role.MEMBER})
    assert response.status_code == 200
    assert "already a member" in response.content.decode() and response.context["form"].errors["email"]
    assert not Invitation.objects.exists()


def test_a_member_cannot_invite_through_the_page(client, bob) -> None:
    client.force_login(bob)
    assert client.post("/organization/", {"email": "x@acme.example", "role": "member"}).status_code == 403
    assert not Invitation.objects.exists()


def test_the_owner_revokes_an_invitation_and_its_link_stops_working(client, alice, acme) -> None:
    issued = invitation_create(actor=alice, organization=acme, email="dan@acme.example", role=Role.MEMBER)
    client.force_login(alice)
    response = client.post(f"/organization/invitations/{issued.invitation.public_id}/revoke/", follow=True)
    assert "The invitation for dan@acme.example was revoked" in response.content.decode()
    assert not Invitation.objects.filter(pk=issued.invitation.pk).exists()
    assert AuditEntry.objects.filter(
        action="invitation.revoke", object_id=str(issued.invitation.public_id)
    ).exists()
    dan = UserFactory.create(email="dan@acme.example")
    with pytest.raises(Exception, match="not valid"):
        invitation_accept(user=dan, secret=issued.secret)
    assert not Membership.objects.filter(user=dan).exists()


def test_an_accepted_invitation_cannot_be_revoked(client, alice, acme) -> None:
    issued = invitation_create(actor=alice, organization=acme, email="dan@acme.example", role=Role.MEMBER)
    invitation_accept(user=UserFactory.create(email="dan@acme.example"), secret=issued.secret)
    client.force_login(alice)
    # An accepted invitation is no longer pending, so it is not found among the pending ones.
    assert client.post(f"/organization/invitations/{issued.invitation.public_id}/revoke/").status_code == 404
    assert Invitation.objects.filter(pk=issued.invitation.pk, accepted_at__isnull=False).exists()


def test_the_revoke_service_refuses_an_accepted_invitation(alice, acme) -> None:
    from django.core.exceptions import ValidationError

    from accounts.services.organizations import invitation_revoke

    issued = invitation_create(actor=alice, organization=acme, email="dan@acme.example", role=Role.MEMBER)
    invitation_accept(user=UserFactory.create(email="dan@acme.example"), secret=issued.secret)
    with pytest.raises(ValidationError, match="already accepted"):
        invitation_revoke(actor=alice, invitation=issued.invitation)
    assert Invitation.objects.filter(pk=issued.invitation.pk).exists()


def test_others_cannot_revoke_an_invitation(client, alice, bob, charlie, acme) -> None:
    issued = invitation_create(actor=alice, organization=acme, email="dan@acme.example", role=Role.MEMBER)
    url = f"/organization/invitations/{issued.invitation.public_id}/revoke/"
    client.force_login(bob)
    assert client.post(url).status_code == 403
    client.force_login(charlie)
    assert client.post(url).status_code == 404
    client.post("/logout/")
    assert client.post(url).status_code == 302
    assert Invitation.objects.filter(pk=issued.invitation.pk).exists()


def _page_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_organization_page_costs_the_same_queries_for_2_or_20_members(client, alice, acme) -> None:
    client.force_login(alice)
    MembershipFactory.create(organization=acme)
    invitation_create(actor=alice, organization=acme, email="i0@x.example", role=Role.MEMBER)
    few = _page_queries(client, "/organization/")
    for n in range(18):
        MembershipFactory.create(organization=acme)
        invitation_create(actor=alice, organization=acme, email=f"i{n + 1}@x.example", role=Role.MEMBER)
    many = _page_queries(client, "/organization/")
    assert many == few and few <= 10
