"""Account rules that must hold when requests race: threads, each with its own database connection."""

from collections.abc import Iterator

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.choices import Role
from accounts.models import AuditEntry, Invitation, Membership
from accounts.services.organizations import (
    invitation_accept,
    invitation_create,
    membership_remove,
    membership_set_role,
)
from accounts.services.tokens import api_token_create
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.races import errors_of, race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_an_invitation_raced_six_times_by_the_invitee_is_accepted_exactly_once(alice, acme) -> None:
    # Only the invitee may accept (their verified address), so the race is six of their tabs.
    issued = invitation_create(actor=alice, organization=acme, email="dan@acme.example", role=Role.MEMBER)
    dan = UserFactory.create(email="dan@acme.example")
    results = race([lambda: invitation_accept(user=dan, secret=issued.secret) for _ in range(6)])
    joined = [result for result in results if isinstance(result, Membership)]
    refused = errors_of(results)
    assert len(joined) == 1 and len(refused) == 5
    assert all(isinstance(error, ValidationError) and "already been used" in str(error) for error in refused)
    assert Membership.objects.filter(organization=acme, user=dan).count() == 1
    invitation = Invitation.objects.get(pk=issued.invitation.pk)
    assert invitation.accepted_by == dan and invitation.accepted_at is not None
    assert AuditEntry.objects.filter(action="invitation.accept").count() == 1


@pytest.fixture
def token_touches() -> Iterator[callable]:  # type: ignore[valid-type]
    """Counts every UPDATE that sets an API token's last_used_at (a trigger, removed afterwards)."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE test_token_touch (token_id bigint NOT NULL)")
        cursor.execute(
            "CREATE FUNCTION test_token_touched() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO test_token_touch VALUES (NEW.id); RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER test_token_touched AFTER UPDATE OF last_used_at ON accounts_apitoken "
            "FOR EACH ROW EXECUTE FUNCTION test_token_touched()"
        )

    def count() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM test_token_touch")
            return cursor.fetchone()[0]

    yield count
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER test_token_touched ON accounts_apitoken")
        cursor.execute("DROP FUNCTION test_token_touched()")
        cursor.execute("DROP TABLE test_token_touch")


def test_concurrent_requests_with_one_token_touch_its_last_use_once(alice, acme, token_touches) -> None:
    issued = api_token_create(user=alice, organization=acme, name="ci")
    assert issued.token.last_used_at is None

    def request() -> int:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
        return client.get("/api/v1/ssh-keys/").status_code

    before = timezone.now()
    assert race([request] * 8) == [200] * 8
    assert token_touches() == 1
    issued.token.refresh_from_db()
    assert before <= issued.token.last_used_at <= timezone.now()
    # Within the touch interval, a later request does not write again.
    assert request() == 200 and token_touches() == 1


def test_two_owners_demoting_each_other_at_once_leave_one_owner() -> None:
    # Whether the two overlap depends on the scheduler: eight organizations, eight races.
    for _ in range(8):
        organization = OrganizationFactory.create()
        first, second = (
            MembershipFactory.create(organization=organization, role=Role.OWNER) for _ in range(2)
        )
        results = race(
            [
                lambda f=first, s=second: membership_set_role(actor=f.user, membership=s, role=Role.MEMBER),
                lambda f=first, s=second: membership_set_role(actor=s.user, membership=f, role=Role.MEMBER),
            ]
        )
        refused = errors_of(results)
        # The loser, demoted by the winner before it held the owner locks, is no longer an owner.
        assert len(refused) == 1 and isinstance(refused[0], PermissionDenied), results
        assert Membership.objects.filter(organization=organization, role=Role.OWNER).count() == 1
        changes = AuditEntry.objects.filter(action="membership.set_role", organization=organization)
        assert changes.count() == 1


def test_two_owners_removing_each_other_at_once_leave_exactly_one_owner() -> None:
    # Whether the two overlap depends on the scheduler: eight organizations, eight races.
    for _ in range(8):
        organization = OrganizationFactory.create()
        first, second = (
            MembershipFactory.create(organization=organization, role=Role.OWNER) for _ in range(2)
        )
        results = race(
            [
                lambda f=first, s=second: membership_remove(actor=f.user, membership=s),
                lambda f=first, s=second: membership_remove(actor=s.user, membership=f),
            ]
        )
        refused = errors_of(results)
        # The owner rows are locked before the actor's right is checked, so the loser, removed by
        # the winner, is refused as no longer an owner.
        assert len(refused) == 1 and isinstance(refused[0], PermissionDenied), results
        remaining = Membership.objects.filter(organization=organization)
        assert remaining.count() == 1 and remaining.get().role == Role.OWNER
        removals = AuditEntry.objects.filter(action="membership.remove", organization=organization)
        assert removals.count() == 1
        removed = first if remaining.get().pk == second.pk else second
        assert removals.get().object_id == str(removed.pk) and removals.get().actor != removed.user
