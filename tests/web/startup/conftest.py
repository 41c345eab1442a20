"""Set-up of the startup pages' view tests: a small fleet, the people, leases with samples."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from clusters.choices import LeaseKind, LeaseState
from clusters.models import GPU, GpuSample, Lease, Node
from clusters.services.fleet import fleet_seed
from tests.clusters.helpers import gpus_of, lease_on

ANONYMOUS = "anonymous"
PEOPLE = ["alice", "bob", "fiona", "charlie", "stella", "frank", ANONYMOUS]


@pytest.fixture
def fleet(db: None) -> list[Node]:
    """Six nodes, two per region, all in the general pool, with the default price book."""
    fleet_seed(nodes=6)
    return list(Node.objects.order_by("hostname"))


@pytest.fixture
def people(alice, bob, fiona, charlie, stella, frank) -> dict[str, User]:  # type: ignore[no-untyped-def]
    return {"alice": alice, "bob": bob, "fiona": fiona, "charlie": charlie, "stella": stella, "frank": frank}


@pytest.fixture
def client_as(people: dict[str, User]) -> Callable[[str], Client]:
    """`client_as("bob")`: a test client logged in as Bob (or anonymous)."""

    def make(who: str) -> Client:
        client = Client()
        if who != ANONYMOUS:
            client.force_login(people[who])
        return client

    return make


def status_of(response: Any) -> int | str:
    """The status, with a redirect to the login page told apart from other redirects."""
    if response.status_code == 302 and response["Location"].startswith("/login/"):
        return "login"
    return response.status_code


def tx_node(fleet: list[Node]) -> Node:
    return next(node for node in fleet if node.hostname.startswith("tx1"))


def active_lease(fleet: list[Node], *, organization, booked_by, hours_ago: float = 2, **fields) -> Lease:  # type: ignore[no-untyped-def]
    """An on-demand lease on a Texas node's eight GPUs, running since `hours_ago`."""
    start = timezone.now().replace(microsecond=0) - timedelta(hours=hours_ago)
    return lease_on(
        gpus_of(tx_node(fleet)),
        organization=organization,
        booked_by=booked_by,
        start=start,
        end=None,
        kind=LeaseKind.ON_DEMAND,
        state=LeaseState.ACTIVE,
        **fields,
    )


def add_samples(lease: Lease, *, since: datetime, every: timedelta, utilization: int) -> int:
    """Readings of each of the lease's GPUs from `since` until now."""
    gpus = GPU.objects.filter(allocations__lease=lease)
    rows, at, now = [], since, timezone.now()
    while at <= now:
        rows += [
            GpuSample(
                gpu=gpu,
                at=at,
                utilization_pct=utilization,
                memory_used_bytes=40 * 2**30,
                temperature_c=61,
                power_draw_w=350.0,
            )
            for gpu in gpus
        ]
        at += every
    GpuSample.objects.bulk_create(rows)
    return len(rows)
