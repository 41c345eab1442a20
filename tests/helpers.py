"""Helpers of every app's tests: clients acting as a person, what a page answered, counting queries."""

import re
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import Organization, User
from accounts.services.tokens import api_token_create

ANONYMOUS = "anonymous"
# Everyone of the ownership tests (tests/conftest.py), for tests parametrized by who asks.
PEOPLE = ["alice", "bob", "fiona", "charlie", "stella", "frank", ANONYMOUS]


def status_of(response: Any) -> int | str:
    """The status, with a redirect to the login page told apart from other redirects."""
    if response.status_code == 302 and response["Location"].startswith("/login/"):
        return "login"
    return response.status_code


def html_without_csrf_tokens(response: Any) -> str:
    """The page's HTML with its CSRF tokens blanked: they are random letters and digits, which can
    spell a word a test asserts is absent (one spelled "Acme")."""
    return re.sub(
        r'name="csrfmiddlewaretoken" value="[^"]*"',
        'name="csrfmiddlewaretoken" value=""',
        response.content.decode(),
    )


def queries_for(client: Client, url: str) -> int:
    """How many SQL queries one GET of `url` makes (the answer must be a 200)."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def csrf_client(user: object) -> Client:
    """A client that enforces CSRF like a browser's, logged in as `user`."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)  # type: ignore[arg-type]
    return client


def api_client_for(user: User, organization: Organization | None = None) -> APIClient:
    """An API client authenticated by a real bearer token of `user` in `organization`."""
    if organization is None:
        organization = user.memberships.first().organization if user.memberships.exists() else None
    secret = api_token_create(user=user, organization=organization, name="test").secret
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def forget_rate_limits() -> None:
    """Delete allauth's rate-limit counters and the API's throttle counts from the cache (Redis),
    and nothing else kept there."""
    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
    stale = [
        key
        for pattern in ("*allauth:rl:*", "*throttle:*")
        for key in client.scan_iter(match=pattern, count=1000)
    ]
    if stale:
        client.delete(*stale)
