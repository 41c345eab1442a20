"""Fixtures of the accounts tests: staff who have not set up a second factor yet (the stand-in for
the SSO providers, `provider`, is in tests/conftest.py: the browser tests use it too)."""

import pytest

from tests.factories import UserFactory


@pytest.fixture
def sam(db):
    """A staff admin who has not set up a second factor."""
    return UserFactory.create(email="sam@voltpark.example", is_staff=True)


@pytest.fixture
def fay(db):
    """Staff finance without a second factor."""
    return UserFactory.create(email="fay@voltpark.example", is_finance_staff=True)
