"""The API's throttles: per token and per client address on booking, quotes, availability, the
timeline and exports, and wrong bearer tokens per address; 429 with Retry-After, counted in Redis."""

import time

import pytest
from rest_framework.test import APIClient

from clusters.models import Lease
from core.throttles import AuthFailureThrottle
from tests.clusters.helpers import build_fleet, later, reserved
from tests.helpers import api_client_for
from tests.races import race

GENEROUS = "1000/m"


@pytest.fixture
def rates(settings):
    """`rates(booking="2/m")`: the per-token rates of the named scopes; every other rate generous."""

    def set_rates(ip: dict[str, str] | None = None, **per_token: str) -> None:
        scopes = ("booking", "quotes", "availability", "timeline", "exports")
        settings.API_THROTTLE_RATES = {scope: per_token.get(scope, GENEROUS) for scope in scopes}
        settings.API_THROTTLE_IP_RATES = {scope: (ip or {}).get(scope, GENEROUS) for scope in scopes}

    return set_rates


def _assert_throttled(response) -> None:
    assert response.status_code == 429, response.content
    assert response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60


def test_a_token_over_its_booking_rate_gets_429_and_books_nothing_more(rates, alice, acme) -> None:
    build_fleet()
    rates(booking="2/m")
    client = api_client_for(alice, acme)
    for hours in (0, 3):
        assert (
            client.post("/api/v1/leases/", reserved(1, start=later(hours)), format="json").status_code == 201
        )
    _assert_throttled(client.post("/api/v1/leases/", reserved(1, start=later(6)), format="json"))
    assert Lease.objects.filter(organization=acme).count() == 2
    # Reading the list is not booking, and releasing must always work: neither is throttled.
    assert client.get("/api/v1/leases/").status_code == 200
    lease = Lease.objects.filter(organization=acme).first()
    assert client.post(f"/api/v1/leases/{lease.public_id}/cancel/").status_code == 200


def test_each_token_has_its_own_allowance(rates, alice, acme) -> None:
    build_fleet()
    rates(booking="1/m")
    first, second = api_client_for(alice, acme), api_client_for(alice, acme)
    assert first.post("/api/v1/leases/", reserved(1), format="json").status_code == 201
    _assert_throttled(first.post("/api/v1/leases/", reserved(1, start=later(3)), format="json"))
    assert second.post("/api/v1/leases/", reserved(1, start=later(6)), format="json").status_code == 201


def test_tokens_from_one_address_share_its_allowance(rates, alice, acme) -> None:
    build_fleet()
    rates(ip={"booking": "2/m"})
    clients = [api_client_for(alice, acme) for _ in range(3)]
    for hours, client in zip((0, 3), clients, strict=False):
        assert (
            client.post("/api/v1/leases/", reserved(1, start=later(hours)), format="json").status_code == 201
        )
    _assert_throttled(clients[2].post("/api/v1/leases/", reserved(1, start=later(6)), format="json"))
    assert Lease.objects.filter(organization=acme).count() == 2


def test_a_forged_forwarded_for_header_does_not_escape_the_address_limit(rates, alice, acme) -> None:
    build_fleet()
    rates(ip={"quotes": "1/m"})
    client = api_client_for(alice, acme)
    assert client.post("/api/v1/quotes/", reserved(1), format="json").status_code == 200
    forged = client.post("/api/v1/quotes/", reserved(1), format="json", HTTP_X_FORWARDED_FOR="203.0.113.9")
    _assert_throttled(forged)


def test_a_signed_in_user_is_counted_on_the_session_api_too(rates, client_as) -> None:
    build_fleet()
    rates(quotes="1/m")
    client = client_as("alice")
    assert client.post("/api/v1/quotes/", reserved(1), content_type="application/json").status_code == 200
    _assert_throttled(client.post("/api/v1/quotes/", reserved(1), content_type="application/json"))


@pytest.mark.parametrize(
    ("scope", "who", "method", "path", "body"),
    [
        ("quotes", "alice", "post", "/api/v1/quotes/", reserved(1)),
        ("availability", "alice", "get", "/api/v1/availability/?region=us-tx-1&gpus=1", None),
        ("availability", "alice", "get", "/api/v1/capacity/offerings/?gpus=1&hours=1", None),
        ("timeline", "alice", "get", "/api/v1/regions/us-tx-1/timeline/", None),
        ("exports", "fiona", "get", "/api/v1/exports/invoices.csv", None),
        ("exports", "fiona", "get", "/api/v1/exports/focus.csv", None),
    ],
)
def test_each_costly_read_is_throttled_per_token(
    rates, everyone, acme, scope, who, method, path, body
) -> None:
    build_fleet()
    rates(**{scope: "1/m"})
    client = api_client_for(everyone[who], acme)
    first = getattr(client, method)(path, body, format="json")
    assert first.status_code == 200, first.content
    _assert_throttled(getattr(client, method)(path, body, format="json"))


def test_a_scope_is_its_own_count(rates, alice, acme) -> None:
    build_fleet()
    rates(quotes="1/m")
    client = api_client_for(alice, acme)
    assert client.post("/api/v1/quotes/", reserved(1), format="json").status_code == 200
    _assert_throttled(client.post("/api/v1/quotes/", reserved(1), format="json"))
    assert client.get("/api/v1/availability/?region=us-tx-1&gpus=1").status_code == 200


def _bearer(secret: str, address: str = "127.0.0.1") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_wrong_bearer_tokens_are_slowed_per_address(settings, alice, acme) -> None:
    settings.API_AUTH_FAILURE_RATE = "3/m"
    right = api_client_for(alice, acme)
    for _ in range(5):  # right tokens do not use the allowance
        assert right.get("/api/v1/leases/").status_code == 200
    for attempt in range(3):
        assert _bearer(f"vp_wrong{attempt}").get("/api/v1/leases/").status_code == 401
    _assert_throttled(_bearer("vp_wrong-again").get("/api/v1/leases/"))
    # Once the address is locked out, a right token from it waits too (or guesses could go on),
    # while another address is not affected.
    _assert_throttled(right.get("/api/v1/leases/"))
    right.defaults["REMOTE_ADDR"] = "192.0.2.7"
    assert right.get("/api/v1/leases/").status_code == 200


def test_wrong_tokens_are_accepted_again_once_the_window_has_passed(
    settings, monkeypatch, alice, acme
) -> None:
    settings.API_AUTH_FAILURE_RATE = "2/m"
    now = time.time()
    monkeypatch.setattr(AuthFailureThrottle, "timer", lambda self: now)
    for _ in range(2):
        assert _bearer("vp_wrong").get("/api/v1/leases/").status_code == 401
    _assert_throttled(_bearer("vp_wrong").get("/api/v1/leases/"))
    now += 61
    assert api_client_for(alice, acme).get("/api/v1/leases/").status_code == 200
    assert _bearer("vp_wrong").get("/api/v1/leases/").status_code == 401


def test_a_malformed_bearer_header_counts_as_a_wrong_token(db, settings) -> None:
    settings.API_AUTH_FAILURE_RATE = "1/m"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer two parts")
    assert client.get("/api/v1/leases/").status_code == 401
    _assert_throttled(_bearer("vp_wrong").get("/api/v1/leases/"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_requests_racing_on_one_token_get_exactly_its_rate(rates, alice, acme) -> None:
    """Twelve quotes at once on a rate of 4: four answered, eight refused. Counting by reading the
    window and writing it back would let racing requests each see room and pass together."""
    build_fleet()
    rates(quotes="4/m")
    client = api_client_for(alice, acme)
    answers = race([lambda: client.post("/api/v1/quotes/", reserved(1), format="json") for _ in range(12)])
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 4 + [429] * 8, statuses


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_wrong_tokens_racing_from_one_address_are_each_counted(settings, db) -> None:
    """Every wrong token answered 401 is counted, however many arrive at once: none is lost to
    another's write, so the address stays locked out for as many guesses as it made."""
    settings.API_AUTH_FAILURE_RATE = "30/m"
    answers = race([lambda i=i: _bearer(f"vp_wrong{i}").get("/api/v1/leases/") for i in range(12)])
    assert sorted(answer.status_code for answer in answers) == [401] * 12
    # 12 counted of 30: exactly 18 more wrong tokens are answered before the address waits.
    for guess in range(18):
        assert _bearer(f"vp_more{guess}").get("/api/v1/leases/").status_code == 401, guess
    _assert_throttled(_bearer("vp_one-too-many").get("/api/v1/leases/"))
