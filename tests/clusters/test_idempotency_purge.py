"""Idempotency-Key rows are purged after IDEMPOTENCY_KEY_RETENTION_HOURS; fresh keys still replay."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from accounts.models import Organization
from clusters.api import idempotency
from clusters.models import IdempotencyKey, Lease
from clusters.services import idempotency as purging
from clusters.services.idempotency import idempotency_keys_purge
from clusters.tasks import idempotency_keys_purge as purge_task
from tests.clusters.test_booking_api import reserved
from tests.factories import OrganizationFactory
from tests.races import errors_of, race


def keys_made(organization: Organization, ages: dict[str, timedelta]) -> None:
    now = timezone.now()
    IdempotencyKey.objects.bulk_create(
        IdempotencyKey(organization=organization, key=key, fingerprint="f" * 64, created_at=now - age)
        for key, age in ages.items()
    )


def kept() -> set[str]:
    return set(IdempotencyKey.objects.values_list("key", flat=True))


def test_keys_past_their_retention_go_and_fresh_ones_stay(acme: Organization) -> None:
    keys_made(acme, {"old": timedelta(hours=25), "older": timedelta(days=3), "fresh": timedelta(hours=23)})

    assert idempotency_keys_purge() == 2
    assert kept() == {"fresh"}
    assert idempotency_keys_purge() == 0 and kept() == {"fresh"}


def test_the_retention_is_a_setting(acme: Organization, settings) -> None:
    settings.IDEMPOTENCY_KEY_RETENTION_HOURS = 1
    keys_made(acme, {"two-hours": timedelta(hours=2), "half-an-hour": timedelta(minutes=30)})
    assert idempotency_keys_purge() == 1 and kept() == {"half-an-hour"}


def test_the_hourly_beat_task_purges(acme: Organization, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(purging, "PURGE_BATCH", 2)
    keys_made(acme, {f"old-{n}": timedelta(days=2) for n in range(5)} | {"fresh": timedelta(minutes=1)})

    purge_task.apply()

    assert kept() == {"fresh"}
    entry = django_settings.CELERY_BEAT_SCHEDULE["idempotency-keys-purge"]
    assert entry == {"task": "clusters.tasks.idempotency_keys_purge", "schedule": 3600.0}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_purges_at_once_delete_each_old_key_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(purging, "PURGE_BATCH", 7)
    keys_made(
        OrganizationFactory.create(),
        {f"old-{n}": timedelta(days=2) for n in range(200)} | {"new": timedelta(0)},
    )

    results = race([idempotency_keys_purge, idempotency_keys_purge])

    assert errors_of(results) == []
    assert sum(results) == 200 and kept() == {"new"}


def test_a_purged_key_is_new_work_and_a_fresh_one_still_replays(api_as, alice, fleet) -> None:
    client = api_as(alice)
    first = client.post("/api/v1/leases/", reserved(1), format="json", HTTP_IDEMPOTENCY_KEY="day-old")
    replayed = client.post("/api/v1/leases/", reserved(1), format="json", HTTP_IDEMPOTENCY_KEY="day-old")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    idempotency_keys_purge()
    again = client.post("/api/v1/leases/", reserved(2), format="json", HTTP_IDEMPOTENCY_KEY="day-old")

    assert (
        first.status_code == replayed.status_code == 201 and replayed.headers["Idempotent-Replayed"] == "true"
    )
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert sorted(Lease.objects.values_list("gpus", flat=True)) == [1, 2]
    assert IdempotencyKey.objects.get().status_code == 201


def test_a_key_purged_between_its_claim_and_its_replay_is_claimed_again(
    api_as, alice, fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = api_as(alice)
    assert (
        client.post("/api/v1/leases/", reserved(1), format="json", HTTP_IDEMPOTENCY_KEY="edge").status_code
        == 201
    )
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    claim = idempotency._claim

    def claim_then_purge(*args):
        claimed = claim(*args)
        if claimed is None:  # the old row was there: the purge lands before the decorator reads it
            idempotency_keys_purge()
        return claimed

    monkeypatch.setattr(idempotency, "_claim", claim_then_purge)
    again = client.post("/api/v1/leases/", reserved(2), format="json", HTTP_IDEMPOTENCY_KEY="edge")

    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert Lease.objects.count() == 2
    assert IdempotencyKey.objects.get().status_code == 201
