"""Idempotency-Key: a repeated POST returns the first answer and books nothing twice."""

from accounts.models import AuditEntry
from clusters.models import IdempotencyKey, Lease
from tests.clusters.helpers import reserved


def test_a_repeated_key_returns_the_first_answer_and_books_once(api_as, alice, fleet) -> None:
    client = api_as(alice)
    body = reserved(1)
    first = client.post("/api/v1/leases/", body, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    second = client.post("/api/v1/leases/", body, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert Lease.objects.count() == 1
    assert IdempotencyKey.objects.get().status_code == 201


def test_a_key_reused_for_a_different_request_is_refused(api_as, alice, fleet) -> None:
    client = api_as(alice)
    first = client.post("/api/v1/leases/", reserved(1), format="json", HTTP_IDEMPOTENCY_KEY="abc-2")
    refused = client.post("/api/v1/leases/", reserved(2), format="json", HTTP_IDEMPOTENCY_KEY="abc-2")
    assert first.status_code == 201
    assert refused.status_code == 422 and refused.json()["code"] == "idempotency_key_reused"
    assert Lease.objects.get().gpus == 1


def test_a_refusal_is_replayed_too(api_as, alice, fleet) -> None:
    client = api_as(alice)
    body = reserved(16)  # above Acme's quota of 8
    first = client.post("/api/v1/leases/", body, format="json", HTTP_IDEMPOTENCY_KEY="abc-3")
    second = client.post("/api/v1/leases/", body, format="json", HTTP_IDEMPOTENCY_KEY="abc-3")
    assert first.status_code == second.status_code == 403
    assert first.json() == second.json() and first.json()["code"] == "quota_exceeded"
    assert second.headers["Idempotent-Replayed"] == "true"
    assert IdempotencyKey.objects.get().status_code == 403
    assert not Lease.objects.exists()


def test_keys_belong_to_one_organization(api_as, alice, charlie, fleet) -> None:
    mine = api_as(alice).post("/api/v1/leases/", reserved(1), format="json", HTTP_IDEMPOTENCY_KEY="same")
    theirs = api_as(charlie).post("/api/v1/leases/", reserved(1), format="json", HTTP_IDEMPOTENCY_KEY="same")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert Lease.objects.count() == 2


def test_lease_actions_honour_the_key(api_as, alice, fleet) -> None:
    client = api_as(alice)
    lease = client.post("/api/v1/leases/", reserved(1), format="json").json()
    url = f"/api/v1/leases/{lease['id']}/cancel/"
    first = client.post(url, HTTP_IDEMPOTENCY_KEY="cancel-1")
    second = client.post(url, HTTP_IDEMPOTENCY_KEY="cancel-1")
    third = client.post(url)
    assert first.status_code == second.status_code == 200 and second.json()["state"] == "cancelled"
    assert second.headers["Idempotent-Replayed"] == "true"
    assert third.status_code == 409
    assert Lease.objects.get(public_id=lease["id"]).state == "cancelled"
    assert AuditEntry.objects.filter(action="lease.cancel", object_id=lease["id"]).count() == 1
