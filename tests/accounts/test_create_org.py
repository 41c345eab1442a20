"""manage.py create_org: creates the owner if needed and prints the slug."""

import pytest
from allauth.account.models import EmailAddress
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.choices import Role
from accounts.models import Membership, Organization, User


def test_it_creates_the_organization_and_its_owner(db, capsys) -> None:
    call_command("create_org", "--name", "Deep Fjord", "--owner", "Olga@Fjord.example", "--gpu-quota", "64")
    assert capsys.readouterr().out.strip() == "deep-fjord"
    org = Organization.objects.get(slug="deep-fjord")
    owner = User.objects.get(email="olga@fjord.example")
    assert org.gpu_quota == 64 and Membership.objects.get(user=owner, organization=org).role == Role.OWNER


def test_a_second_organization_of_the_same_name_gets_its_own_slug(db, capsys) -> None:
    call_command("create_org", "--name", "Deep Fjord", "--owner", "a@x.example")
    call_command("create_org", "--name", "Deep Fjord", "--owner", "a@x.example")
    assert capsys.readouterr().out.split() == ["deep-fjord", "deep-fjord-2"]


def test_it_refuses_a_negative_quota(db) -> None:
    with pytest.raises(CommandError, match="0 or more"):
        call_command("create_org", "--name", "X", "--owner", "x@x.example", "--gpu-quota", "-1")
    assert not Organization.objects.exists()


def test_the_owner_it_creates_has_not_verified_the_address(db) -> None:
    call_command("create_org", "--name", "Deep Fjord", "--owner", "olga@fjord.example")
    address = EmailAddress.objects.get(user__email="olga@fjord.example")
    assert (address.email, address.primary, address.verified) == ("olga@fjord.example", True, False)
