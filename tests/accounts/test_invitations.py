"""Invitations: an owner invites by email; the link works once, expires, and only for the person
who has verified the address it was sent to."""

from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.choices import Role
from accounts.models import Invitation, Membership
from accounts.services.organizations import invitation_accept, invitation_create
from accounts.services.refusals import InvitationEmailUnverified
from tests.factories import UserFactory


def test_an_owner_invites_and_the_invitee_joins_with_the_role(
    alice, acme, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        issued = invitation_create(
            actor=alice, organization=acme, email="Dan@acme.example", role=Role.FINANCE
        )
    assert [m.to for m in mail.outbox] == [["dan@acme.example"]] and issued.path in mail.outbox[0].body
    dan = UserFactory.create(email="dan@acme.example")
    membership = invitation_accept(user=dan, secret=issued.secret)
    assert (membership.organization, membership.role) == (acme, Role.FINANCE)
    assert Membership.objects.get(user=dan).role == Role.FINANCE
    invitation = Invitation.objects.get(pk=issued.invitation.pk)
    assert invitation.accepted_by == dan and invitation.accepted_at is not None


def test_the_invitation_email_carries_the_link(alice, acme, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        issued = invitation_create(actor=alice, organization=acme, email="dan@acme.example", role=Role.MEMBER)
    assert len(mail.outbox) == 1 and issued.path in mail.outbox[0].body


def test_an_invitation_works_only_once(alice, acme) -> None:
    issued = invitation_create(actor=alice, organization=acme, email="dan@acme.example", role=Role.MEMBER)
    invitation_accept(user=UserFactory.create(email="dan@acme.example"), secret=issued.secret)
    eve = UserFactory.create(email="eve@elsewhere.example")
    with pytest.raises(ValidationError, match="already been used"):
        invitation_accept(user=eve, secret=issued.secret)
    assert not Membership.objects.filter(user=eve).exists()


def test_an_expired_invitation_is_refused(alice, acme) -> None:
    issued = invitation_create(actor=alice, organization=acme, email="dan@acme.example", role=Role.MEMBER)
    Invitation.objects.filter(pk=issued.invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    dan = UserFactory.create(email="dan@acme.example")
    with pytest.raises(ValidationError, match="expired"):
        invitation_accept(user=dan, secret=issued.secret)
    assert not Membership.objects.filter(user=dan).exists()


def test_a_member_may_not_invite(bob, acme) -> None:
    with pytest.raises(PermissionDenied):
        invitation_create(actor=bob, organization=acme, email="x@acme.example", role=Role.MEMBER)
    assert not Invitation.objects.exists()


def test_accepting_through_the_page_twice_says_it_was_used(client, alice, acme) -> None:
    issued = invitation_create(actor=alice, organization=acme, email="dan@acme.example", role=Role.MEMBER)
    client.force_login(UserFactory.create(email="dan@acme.example"))
    first = client.post(issued.path)
    assert first.status_code == 302
    assert Membership.objects.filter(organization=acme, user__email="dan@acme.example").exists()
    second = client.post(issued.path, follow=True)
    assert "already been used" in second.content.decode()
    assert Membership.objects.filter(organization=acme, user__email="dan@acme.example").count() == 1


def test_another_organizations_owner_cannot_accept_an_invitation_sent_to_someone_else(
    client, alice, acme, charlie
) -> None:
    issued = invitation_create(actor=alice, organization=acme, email="dan@acme.example", role=Role.MEMBER)
    client.force_login(charlie)
    response = client.post(issued.path)
    assert response.status_code == 403
    page = response.content.decode()
    assert "This invitation was sent to dan@acme.example" in page and "charlie@globex.example" in page
    assert not Membership.objects.filter(organization=acme, user=charlie).exists()
    assert Invitation.objects.get(pk=issued.invitation.pk).accepted_at is None


def test_the_invitee_must_have_verified_the_address_first(alice, acme) -> None:
    issued = invitation_create(actor=alice, organization=acme, email="dan@acme.example", role=Role.MEMBER)
    dan = UserFactory.create(email="dan@acme.example", email_verified=False)
    with pytest.raises(InvitationEmailUnverified, match="Verify dan@acme.example first"):
        invitation_accept(user=dan, secret=issued.secret)
    assert not Membership.objects.filter(user=dan).exists()
    assert Invitation.objects.get(pk=issued.invitation.pk).accepted_at is None


def test_a_second_verified_address_of_the_invitee_is_enough(alice, acme) -> None:
    issued = invitation_create(actor=alice, organization=acme, email="dan@acme.example", role=Role.MEMBER)
    dan = UserFactory.create(email="dan@personal.example")
    EmailAddress.objects.create(user=dan, email="dan@acme.example", verified=True, primary=False)
    assert invitation_accept(user=dan, secret=issued.secret).organization == acme


def test_the_invitation_page_tells_each_viewer_what_to_do(client, alice, acme, charlie) -> None:
    issued = invitation_create(actor=alice, organization=acme, email="dan@acme.example", role=Role.MEMBER)
    anonymous = client.get(issued.path).content.decode()
    assert "Join Acme AI" in anonymous and "Sign up as dan@acme.example" in anonymous
    client.force_login(charlie)
    assert "Log out and log in as dan@acme.example" in client.get(issued.path).content.decode()
    client.force_login(UserFactory.create(email="dan@acme.example", email_verified=False))
    assert "Send the confirmation email again" in client.get(issued.path).content.decode()
    assert client.get("/invitations/not-a-real-secret/").status_code == 404
