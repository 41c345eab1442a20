"""/healthz: what Docker and load balancers call; no login, the database and Redis each checked."""

import socket
from collections.abc import Iterator

import pytest
from django.test import Client


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound by this test, never listening."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


def test_it_answers_200_naming_each_part_ok_without_a_login(client: Client, db: None) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}
    assert "no-store" in response["Cache-Control"]


def test_it_answers_a_caller_that_uses_an_address_not_in_allowed_hosts(client: Client, db: None) -> None:
    response = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200 and response.json()["status"] == "ok"
    assert client.get("/", HTTP_HOST="10.1.2.3:8000").status_code == 400


def test_it_answers_503_naming_redis_when_redis_cannot_be_reached(
    client: Client, db: None, settings, closed_port: int
) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port}/0",
        }
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "redis": "failed"}
