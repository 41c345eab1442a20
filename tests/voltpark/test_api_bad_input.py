"""Bad input anywhere in the API is a 4xx naming what is wrong, and changes nothing: pages of a list,
bodies nested too deeply, bodies too large, bodies that are not JSON."""

import pytest
from django.test import Client

from clusters.models import Lease
from programs.models import EarlyStageApplication
from tests.clusters.helpers import build_fleet, reserved
from tests.voltpark.helpers import paginated_list_paths

BEYOND_BIGINT = str(2**64)


@pytest.fixture
def booked(api_as, alice, stella, frank) -> dict[str, object]:
    """Alice's Acme has a lease, so every list of hers has a row to page through."""
    build_fleet()
    client = api_as(alice)
    assert client.post("/api/v1/leases/", reserved(1), format="json").status_code == 201
    return {"alice": client, "stella": api_as(stella), "frank": api_as(frank)}


def test_every_paginated_list_is_documented_as_such() -> None:
    paths = paginated_list_paths()
    assert {"/api/v1/leases/", "/api/v1/invoices/", "/api/v1/nodes/"} <= set(paths)


@pytest.mark.parametrize("path", paginated_list_paths())
@pytest.mark.parametrize("value", [BEYOND_BIGINT, "0", "-1", "ten"])
def test_every_list_refuses_a_limit_it_cannot_serve_naming_it(booked, path, value) -> None:
    for client in booked.values():
        response = client.get(path, {"limit": value})
        if response.status_code == 403:
            continue  # not this person's list
        assert response.status_code == 400, (path, response.content)
        assert response.json()["code"] == "invalid"
        assert "from 1 to 1000" in response.json()["fields"]["limit"][0]


@pytest.mark.parametrize("path", paginated_list_paths())
def test_every_list_refuses_an_offset_beyond_bigint_and_pages_within_it(booked, path) -> None:
    for client in booked.values():
        refused = client.get(path, {"offset": BEYOND_BIGINT})
        if refused.status_code == 403:
            continue
        assert refused.status_code == 400 and "offset" in refused.json()["fields"]
        page = client.get(path, {"limit": 1000, "offset": 0})
        assert page.status_code == 200 and page.json()["count"] >= 0


def test_a_json_body_nested_50000_deep_is_a_400(booked) -> None:
    body = "[" * 50_000 + "]" * 50_000
    response = booked["alice"].post("/api/v1/leases/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error" and "nested too deeply" in response.json()["detail"]
    assert Lease.objects.count() == 1


def test_the_api_takes_json_only(booked) -> None:
    response = booked["alice"].post("/api/v1/leases/", reserved(1), format="multipart")
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"
    assert Lease.objects.count() == 1


def test_an_oversized_api_body_is_refused_unread_with_413(api_as, alice, acme) -> None:
    five_mb = "x" * (5 * 1024 * 1024)
    body = {"what_we_build": five_mb, "stage": "seed", "funding": "none", "gpus_wanted": 8, "why": "x"}
    response = api_as(alice).post("/api/v1/early-stage/applications/", body, format="json")
    assert response.status_code == 413
    assert response.json() == {
        "code": "body_too_large",
        "detail": "The request body is over the limit of 256 KiB.",
    }
    assert not EarlyStageApplication.objects.exists()


def test_an_oversized_page_body_is_refused_with_413(alice) -> None:
    client = Client()
    client.force_login(alice)
    response = client.post("/organization/early-stage/", {"why": "x" * (300 * 1024)})
    assert response.status_code == 413 and b"over the limit" in response.content
    assert not EarlyStageApplication.objects.exists()


def test_the_body_limit_is_a_setting(api_as, alice, settings) -> None:
    settings.REQUEST_BODY_MAX_BYTES = 2048
    response = api_as(alice).post("/api/v1/ssh-keys/", {"public_key": "x" * 3000}, format="json")
    assert response.status_code == 413 and "2 KiB" in response.json()["detail"]


def test_card_setup_with_stripe_off_is_a_refusal_not_a_server_error(api_as, alice, settings) -> None:
    # Found by the schemathesis run (tests/voltpark/test_api_fuzz.py): it answered 503, which tells
    # a client to try again, although nothing will change until an operator turns Stripe on.
    settings.STRIPE_ENABLED = False
    for path in ("/api/v1/balance/card/", "/api/v1/balance/top-ups/"):
        refused = api_as(alice).post(path, {"amount": 50} if "top-ups" in path else {}, format="json")
        assert refused.status_code == 409, (path, refused.content)
        assert refused.json()["code"] == "stripe_off"
