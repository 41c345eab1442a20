"""Fixtures of the clusters tests: a small fleet to book (region us-tx-1 with 2 clusters × 4 nodes ×
8 GPUs, and its prices), booking's service with its limits shortened, and a simulated fleet served
over loopback HTTP for the run-time tests, and real Celery workers and beat (`celery`)."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings

from accounts.models import Organization, User
from accounts.services.ssh_keys import ssh_key_add
from clusters.choices import LeaseKind
from clusters.models import PriceBookEntry
from tests.clusters.helpers import SSH_KEY, Booking, Fleet, RegionFleet, build_fleet, serve_fleet
from tests.clusters.workers import Celery


@pytest.fixture
def fleet(db: None) -> RegionFleet:
    return build_fleet()


@pytest.fixture
def big_quota(acme, globex):
    """Quotas high enough that only capacity limits bookings."""
    acme.gpu_quota = globex.gpu_quota = 1000
    acme.save(update_fields=["gpu_quota"])
    globex.save(update_fields=["gpu_quota"])


@pytest.fixture
def booking(db: None, settings: Any, acme: Organization, alice: User) -> Booking:
    """Booking's own service with its limits shortened: whole seconds, leases from one second long."""
    settings.BOOKING_TIME_STEP = timedelta(seconds=1)
    settings.BOOKING_MIN_DURATION = timedelta(seconds=1)
    acme.gpu_quota = 1000
    acme.save(update_fields=["gpu_quota"])
    since = datetime(2020, 1, 1, tzinfo=UTC)
    for kind, price in ((LeaseKind.RESERVED, "1.9900"), (LeaseKind.ON_DEMAND, "2.4900")):
        PriceBookEntry.objects.get_or_create(
            kind=kind, region=None, defaults={"price_per_gpu_hour": Decimal(price), "effective_from": since}
        )
    return Booking(acme, alice, ssh_key_add(user=alice, public_key=SSH_KEY))


@pytest.fixture
def fleet_of(db: None, tmp_path: Path) -> Iterator[Callable[..., Fleet]]:
    """`fleet_of(3)`: three nodes in the database, served by a simulated agent over loopback HTTP;
    `fleet_of(1, region="us-va-1")` puts them in another region."""
    stops: list[Callable[[], None]] = []

    def make(count: int, *, prefix: str = "sim", region: str = "us-tx-1") -> Fleet:
        fleet, stop = serve_fleet(count, tmp_path / "leases", prefix=prefix, region=region)
        stops.append(stop)
        return fleet

    yield make
    for stop in stops:
        stop()


@pytest.fixture
def celery(tmp_path: Path) -> Iterator[Celery]:
    """Real Celery workers and beat (`celery.start("worker")`), stopped after the test; Redis emptied
    first."""
    redis.Redis.from_url(django_settings.REDIS_URL).flushdb()
    runner = Celery(tmp_path)
    try:
        yield runner
    finally:
        runner.stop()
