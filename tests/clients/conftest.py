"""Fixtures of the client's tests: the command line run in this process against the real Django
application (through httpx's WSGI transport, on the test database), as a person with a token."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections

from accounts.models import User
from accounts.services.tokens import api_token_create
from tests.clients.helpers import Cli


@pytest.fixture
def wsgi_transport(db: None) -> Iterator[httpx.WSGITransport]:
    """The platform's WSGI application in this thread, on the test's transaction (as Django's test
    client does, a request must not close the connection that holds the test's transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield httpx.WSGITransport(app=get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def cli(wsgi_transport: httpx.WSGITransport, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> Cli:
    """`cli.as_(alice)` then `cli("leases")`: the `voltpark` command with a token of that person's."""
    monkeypatch.setenv("VOLTPARK_URL", "http://testserver")
    monkeypatch.setenv("VOLTPARK_CONFIG", str(tmp_path / "voltpark" / "config.toml"))
    monkeypatch.delenv("VOLTPARK_TOKEN", raising=False)
    return Cli(wsgi_transport, monkeypatch, capsys)


@pytest.fixture
def token_of():
    def make(user: User) -> str:
        return api_token_create(
            user=user, organization=user.memberships.first().organization, name="cli"
        ).secret

    return make
