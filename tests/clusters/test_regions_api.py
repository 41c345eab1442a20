"""GET /api/v1/regions/: each region's GPUs in total, healthy and per pool; the schema describes it."""

import re

from django.core.management import call_command

from clusters.choices import GpuHealth, LeaseKind, NodeState
from clusters.models import GPU, Node, Region
from clusters.services.booking import lease_book


def test_it_counts_gpus_per_region_and_pool(api_as, alice) -> None:
    call_command("seed_fleet", "--nodes", "12", "--early-stage-share", "0.25")
    Node.objects.filter(hostname="tx1-c01-n001").update(state=NodeState.UNHEALTHY)
    GPU.objects.filter(node__hostname="va1-c01-n002", index=3).update(health=GpuHealth.FAILED)
    response = api_as(alice).get("/api/v1/regions/")
    assert response.status_code == 200
    by_code = {r["code"]: r for r in response.json()}
    assert by_code["us-tx-1"] == {
        "code": "us-tx-1",
        "name": "Texas 1",
        "us_state": "Texas",
        "gpus_total": 32,
        "gpus_healthy": 24,
        "gpus_free_now": 16,
        "gpus_general": 24,
        "gpus_early_stage": 8,
    }
    assert by_code["us-va-1"]["gpus_healthy"] == 31
    assert by_code["us-wa-1"]["gpus_healthy"] == 32


def test_it_needs_authentication(client, db) -> None:
    response = client.get("/api/v1/regions/")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"


def test_the_openapi_schema_and_docs_describe_the_endpoints(client, db) -> None:
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/regions/" in paths and "/api/v1/ssh-keys/" in paths
    assert "bearerAuth" in schema.json()["components"]["securitySchemes"]
    docs = client.get("/api/v1/docs/").content.decode()
    assert "swagger-ui" in docs and "cdn.jsdelivr" not in docs


def test_the_home_page_shows_each_regions_capacity_and_prices(client, db) -> None:
    call_command("seed_fleet", "--nodes", "6")
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('class="card region"') == 3
    assert "$2.49 per GPU-hour" in page and "$1.99 per GPU-hour" in page


def book_on_demand(user, organization, region_code: str, gpus: int) -> None:
    lease_book(
        user=user,
        organization=organization,
        region=Region.objects.get(code=region_code),
        gpus=gpus,
        kind=LeaseKind.ON_DEMAND,
    )


def test_gpus_available_now_on_the_home_page_are_those_a_visitor_could_book_now(client, alice, acme) -> None:
    call_command("seed_fleet", "--nodes", "12", "--early-stage-share", "0.25")  # per region: 3 general nodes
    book_on_demand(alice, acme, "us-tx-1", 8)
    GPU.objects.filter(node__hostname="va1-c01-n002", index=3).update(health=GpuHealth.FAILED)
    GPU.objects.filter(node__hostname="va1-c01-n002", index=4).update(needs_cleanup=True)
    page = client.get("/").content.decode()
    free = dict(re.findall(r'data-region="([\w-]+)".*?data-field="gpus_free_now">(\d+)<', page, re.S))
    # Leased GPUs, a failed one, one still being cleaned and the early-stage pool are not bookable.
    assert free == {"us-tx-1": "16", "us-va-1": "22", "us-wa-1": "24"}


def test_the_regions_api_counts_the_gpus_free_now_in_the_callers_pools(
    api_as, alice, acme, charlie, globex
) -> None:
    call_command("seed_fleet", "--nodes", "12", "--early-stage-share", "0.25")
    book_on_demand(alice, acme, "us-tx-1", 8)
    globex.early_stage_approved = True
    globex.save(update_fields=["early_stage_approved"])
    for who, expected in ((alice, 16), (charlie, 24)):
        by_code = {r["code"]: r for r in api_as(who).get("/api/v1/regions/").json()}
        assert by_code["us-tx-1"]["gpus_free_now"] == expected
