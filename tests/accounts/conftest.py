"""Fixtures of the accounts tests: staff who have not set up a second factor yet, and the stand-in
for the SSO providers' endpoints."""

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings

from tests.accounts.sso_provider import CLIENTS, StandIn, serve
from tests.factories import UserFactory


@pytest.fixture
def sam(db):
    """A staff admin who has not set up a second factor."""
    return UserFactory.create(email="sam@voltpark.example", is_staff=True)


@pytest.fixture
def fay(db):
    """Staff finance without a second factor."""
    return UserFactory.create(email="fay@voltpark.example", is_finance_staff=True)


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
