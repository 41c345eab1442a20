"""Fixtures of the clusters tests: a small fleet to book (region us-tx-1 with 2 clusters × 4 nodes ×
8 GPUs, and its prices), and a simulated fleet served over loopback HTTP for the run-time tests."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from clusters.choices import LeaseKind
from clusters.models import Node, PriceBookEntry, Region
from tests.clusters.helpers import booking, fleet_of  # noqa: F401
from tests.factories import ClusterFactory, NodeFactory, RegionFactory


@dataclass
class Fleet:
    """The test fleet: `nodes[0..3]` in cluster tx1-c01, `nodes[4..7]` in tx1-c02."""

    region: Region
    nodes: list[Node]


def build_fleet(clusters: int = 2, nodes_per_cluster: int = 4) -> Fleet:
    region = RegionFactory()
    nodes = []
    for c in range(1, clusters + 1):
        cluster = ClusterFactory(region=region, name=f"tx1-c{c:02d}")
        nodes += [
            NodeFactory(cluster=cluster, hostname=f"tx1-c{c:02d}-n{n:03d}")
            for n in range(1, nodes_per_cluster + 1)
        ]
    since = datetime(2020, 1, 1, tzinfo=UTC)
    PriceBookEntry.objects.create(
        kind=LeaseKind.RESERVED, price_per_gpu_hour=Decimal("1.99"), effective_from=since
    )
    PriceBookEntry.objects.create(
        kind=LeaseKind.ON_DEMAND, price_per_gpu_hour=Decimal("2.49"), effective_from=since
    )
    return Fleet(region=region, nodes=nodes)


@pytest.fixture
def fleet(db: None) -> Fleet:
    return build_fleet()


def later(hours: float = 0, *, days: int = 1) -> datetime:
    """A whole-minute instant `days` + `hours` from the start of the next hour."""
    base = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return base + timedelta(days=days, hours=hours)


@pytest.fixture
def big_quota(acme, globex):  # type: ignore[no-untyped-def]
    """Quotas high enough that only capacity limits bookings."""
    acme.gpu_quota = globex.gpu_quota = 1000
    acme.save(update_fields=["gpu_quota"])
    globex.save(update_fields=["gpu_quota"])
