"""Invitations: an owner invites by email; the link works once and expires."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.choices import Role
from accounts.models import Invitation, Membership
from accounts.services.organizations import invitation_accept, invitation_create
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
