"""A request that finds PostgreSQL or Redis away (restarting, failing over) is answered 503 with
Retry-After, JSON with a code under /api/, never a 500; other errors are left to Django."""

from collections.abc import Iterator

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import Client, RequestFactory

from accounts.models import User
from core.unavailable import UnavailableMiddleware
from tests.helpers import api_client_for
from tests.live import free_port


@pytest.fixture
def database_away(transactional_db: None) -> Iterator[None]:
    """The connection pointed at a loopback port where nothing listens, then put back."""
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(free_port("RUNTIME_TEST_PORTS", "18300-18400"))
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port


def test_an_api_request_that_finds_the_database_away_is_answered_503_with_retry_after(
    alice: User, request: pytest.FixtureRequest
) -> None:
    api = api_client_for(alice)
    request.getfixturevalue("database_away")

    answer = api.get("/api/v1/leases/")

    assert answer.status_code == 503
    assert answer["Retry-After"] == "5"
    assert answer.json()["code"] == "unavailable" and "try again" in answer.json()["detail"]


def test_a_page_that_finds_the_database_away_is_answered_503_in_plain_text(database_away: None) -> None:
    answer = Client().get("/")

    assert answer.status_code == 503
    assert answer["Retry-After"] == "5" and answer["Content-Type"].startswith("text/plain")


def test_a_log_in_that_finds_redis_away_is_answered_503(settings, alice: User) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
        }
    }

    answer = Client().post("/login/", {"login": "alice@acme.example", "password": "wrong password 1"})

    assert answer.status_code == 503 and answer["Retry-After"] == "5"


def test_any_other_error_of_a_view_is_left_to_django() -> None:
    middleware = UnavailableMiddleware(HttpResponse)

    assert middleware.process_exception(RequestFactory().get("/api/v1/leases/"), ValueError("a bug")) is None
