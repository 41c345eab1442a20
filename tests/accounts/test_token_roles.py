"""A token acts with its user's role in its organization as it is at each request (read with the token)."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.choices import Role
from accounts.models import Membership
from tests.clusters.helpers import build_fleet, reserved
from tests.helpers import api_client_for


def test_a_tokens_role_is_read_afresh_on_every_request(bob, acme) -> None:
    build_fleet()
    client = api_client_for(bob, acme)
    assert client.get("/api/v1/leases/").status_code == 200
    Membership.objects.filter(user=bob, organization=acme).update(role=Role.FINANCE)
    refused = client.post("/api/v1/leases/", reserved(1), format="json")
    assert refused.status_code == 403
    Membership.objects.filter(user=bob, organization=acme).update(role=Role.MEMBER)
    assert client.post("/api/v1/leases/", reserved(1), format="json").status_code == 201
    assert acme.leases.count() == 1


def test_the_token_of_someone_who_left_the_organization_is_refused(bob, acme) -> None:
    build_fleet()
    client = api_client_for(bob, acme)
    Membership.objects.filter(user=bob, organization=acme).delete()
    assert client.get("/api/v1/leases/").status_code == 403
    assert client.post("/api/v1/leases/", reserved(1), format="json").status_code == 403
    assert not acme.leases.exists()


def test_a_tokens_role_comes_with_the_token_in_one_read(bob, acme) -> None:
    build_fleet()
    client = api_client_for(bob, acme)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/leases/").status_code == 200
    reads = [q["sql"] for q in queries.captured_queries if '"accounts_membership"' in q["sql"]]
    assert len(reads) == 1 and '"accounts_apitoken"' in reads[0]
