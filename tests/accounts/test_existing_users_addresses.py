"""Users from before allauth get their address as allauth's primary email, unverified (migration 0005)."""

from importlib import import_module

from allauth.account.models import EmailAddress
from django.apps import apps

from accounts.models import User
from tests.factories import UserFactory

migration = import_module("accounts.migrations.0005_email_addresses_of_existing_users")


def test_each_user_without_an_address_gets_theirs_unverified(db) -> None:
    old = User.objects.create_user("old@before.example", "x")
    verified = UserFactory.create(email="new@after.example")
    migration.add_unverified_addresses(apps, None)
    assert list(EmailAddress.objects.filter(user=old).values_list("email", "primary", "verified")) == [
        ("old@before.example", True, False)
    ]
    assert list(EmailAddress.objects.filter(user=verified).values_list("verified", flat=True)) == [True]
