"""Fixtures shared by the whole suite: the named people of the ownership tests.

Alice (owner) and Bob (member) are in Acme; Charlie owns Globex; Fiona is Acme's finance
member; Stella is a staff admin and Frank staff finance.
"""

import pytest
from rest_framework.test import APIClient

from accounts.choices import Role
from accounts.models import Organization, User
from accounts.services.tokens import api_token_create
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory


@pytest.fixture
def acme(db: None) -> Organization:
    return OrganizationFactory(name="Acme AI", slug="acme-ai")


@pytest.fixture
def globex(db: None) -> Organization:
    return OrganizationFactory(name="Globex Research", slug="globex")


@pytest.fixture
def alice(acme: Organization) -> User:
    return MembershipFactory(user__email="alice@acme.example", organization=acme, role=Role.OWNER).user


@pytest.fixture
def bob(acme: Organization) -> User:
    return MembershipFactory(user__email="bob@acme.example", organization=acme, role=Role.MEMBER).user


@pytest.fixture
def fiona(acme: Organization) -> User:
    return MembershipFactory(user__email="fiona@acme.example", organization=acme, role=Role.FINANCE).user


@pytest.fixture
def charlie(globex: Organization) -> User:
    return MembershipFactory(user__email="charlie@globex.example", organization=globex, role=Role.OWNER).user


@pytest.fixture
def stella(db: None) -> User:
    return UserFactory(email="stella@voltpark.example", is_staff=True)


@pytest.fixture
def frank(db: None) -> User:
    return UserFactory(email="frank@voltpark.example", is_finance_staff=True)


def api_client_for(user: User, organization: Organization | None = None) -> APIClient:
    """An API client authenticated by a real bearer token of `user` in `organization`."""
    if organization is None:
        organization = user.memberships.first().organization if user.memberships.exists() else None
    secret = api_token_create(user=user, organization=organization, name="test").secret
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def api_as():  # type: ignore[no-untyped-def]
    """`api_as(alice)` gives an API client with a bearer token of Alice's."""
    return api_client_for


# --- Browser (issue 6): fast password hashing in tests (Django's default costs ~0.5 s per user).
@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
