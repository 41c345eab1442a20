"""Fixtures shared by the whole suite: the named people of the ownership tests, clients acting as
them, a small fleet in every region, and `provider`: the stand-in for the SSO providers (GitHub,
Google) on loopback, both switched on.

Alice (owner) and Bob (member) are in Acme; Charlie owns Globex; Fiona is Acme's finance
member; Stella is a staff admin and Frank staff finance, both with an authenticator app
(tests.factories.STAFF_TOTP_SECRET), as staff must have.
"""

from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.test import Client

from accounts.choices import Role
from accounts.models import Organization, User
from clusters.models import Node
from clusters.services.fleet import fleet_seed
from tests.accounts.sso_provider import CLIENTS, StandIn, serve
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory, mfa_enable
from tests.helpers import ANONYMOUS, api_client_for, forget_rate_limits
from tests.markers import unmarked_slow_tests


@pytest.fixture
def acme(db: None) -> Organization:
    return OrganizationFactory.create(name="Acme AI", slug="acme-ai")


@pytest.fixture
def globex(db: None) -> Organization:
    return OrganizationFactory.create(name="Globex Research", slug="globex")


@pytest.fixture
def alice(acme: Organization) -> User:
    return MembershipFactory.create(user__email="alice@acme.example", organization=acme, role=Role.OWNER).user


@pytest.fixture
def bob(acme: Organization) -> User:
    return MembershipFactory.create(user__email="bob@acme.example", organization=acme, role=Role.MEMBER).user


@pytest.fixture
def fiona(acme: Organization) -> User:
    return MembershipFactory.create(
        user__email="fiona@acme.example", organization=acme, role=Role.FINANCE
    ).user


@pytest.fixture
def charlie(globex: Organization) -> User:
    return MembershipFactory.create(
        user__email="charlie@globex.example", organization=globex, role=Role.OWNER
    ).user


@pytest.fixture
def stella(db: None) -> User:
    return mfa_enable(UserFactory.create(email="stella@voltpark.example", is_staff=True))


@pytest.fixture
def frank(db: None) -> User:
    return mfa_enable(UserFactory.create(email="frank@voltpark.example", is_finance_staff=True))


@pytest.fixture
def everyone(alice, bob, fiona, charlie, stella, frank) -> dict[str, User]:
    """Everyone above by name, for tests parametrized by who asks."""
    return {"alice": alice, "bob": bob, "fiona": fiona, "charlie": charlie, "stella": stella, "frank": frank}


@pytest.fixture
def client_as(everyone: dict[str, User]) -> Callable[[str], Client]:
    """`client_as("bob")`: a test client logged in as Bob (or anonymous)."""

    def make(who: str) -> Client:
        client = Client()
        if who != ANONYMOUS:
            client.force_login(everyone[who])
        return client

    return make


@pytest.fixture
def api_as():
    """`api_as(alice)` gives an API client with a bearer token of Alice's."""
    return api_client_for


@pytest.fixture
def seeded_fleet(db: None) -> list[Node]:
    """Six nodes, two per region, all in the general pool, with the default price book."""
    fleet_seed(nodes=6)
    return list(Node.objects.order_by("hostname"))


@pytest.fixture
def provider(db, settings) -> Iterator[StandIn]:
    """The stand-in, running, with both providers switched on (as their client ids in the environment do)."""
    server, state = serve(urlsplit(django_settings.SSO_GITHUB_URL).port or 0)
    settings.SOCIALACCOUNT_PROVIDERS = {
        name: {**config, "APPS": [{"client_id": CLIENTS[name][0], "secret": CLIENTS[name][1], "key": ""}]}
        for name, config in django_settings.SOCIALACCOUNT_PROVIDERS.items()
    }
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """allauth's rate limits live in Redis, which outlives a test: each test starts with none used
    (the suite logs in from one address far more often than any limit allows)."""
    forget_rate_limits()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    """Django's default hasher costs ~0.5 s per user; tests make many users and never need a slow hash."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse a slow test left unmarked: `make test-fast` would run it, and slow down, unnoticed."""
    unmarked = unmarked_slow_tests(items)
    if unmarked:
        raise pytest.UsageError(
            "mark these tests slow (they start a worker or a server, or race threads):\n"
            + "\n".join(unmarked)
        )
