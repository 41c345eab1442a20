"""Helpers for the staff page tests: everyone by name, and counting a page's queries."""

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext


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
