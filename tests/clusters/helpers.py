"""Helpers for the run-time tests: leases booked through booking's service (or, where a test needs
a lease booking would refuse, such as one that started in the past, made directly), and a simulated
fleet: the real node agent (nodeagent) served over HTTP on loopback, the boundary where the GPUs are
faked. RUNTIME_TEST_PORTS ("18300-18400" by default) is the range of loopback ports they may use.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.postgres.fields.ranges import DateTimeTZRange
from django.utils import timezone

from accounts.models import Organization, SshKey, User
from accounts.services.ssh_keys import ssh_key_add
from clusters.choices import LeaseKind, LeaseState
from clusters.models import GPU, Allocation, Lease, Node, PriceBookEntry
from clusters.services.agent_tokens import encrypt_agent_token
from clusters.services.booking import lease_book
from nodeagent.backends.simulated import SimulatedFleet
from nodeagent.protocol import account_for_lease
from nodeagent.server import start_in_thread
from tests.factories import ClusterFactory, NodeFactory
from tests.live import free_port

AGENT_TOKEN = "test-agent-token"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c alice@laptop"


def lease_on(
    gpus: list[GPU],
    *,
    organization: Organization,
    booked_by: User,
    start: datetime | None = None,
    end: datetime | None = None,
    state: str = LeaseState.SCHEDULED,
    kind: str = LeaseKind.RESERVED,
    keys: list[str] | None = None,
    **fields: Any,
) -> Lease:
    """A lease over [start, end) holding exactly these GPUs, as booking would leave it."""
    start = start or timezone.now()
    end = end if end is not None or kind == LeaseKind.ON_DEMAND else start + timedelta(hours=1)
    lease = Lease.objects.create(
        organization=organization,
        booked_by=booked_by,
        region=gpus[0].node.cluster.region,
        gpus=len(gpus),
        kind=kind,
        start=start,
        end=end,
        state=state,
        price_per_gpu_hour="1.9900",
        ssh_public_keys=keys if keys is not None else [SSH_KEY],
        started_at=start if state == LeaseState.ACTIVE else None,
        **fields,
    )
    Allocation.objects.bulk_create(
        Allocation(lease=lease, gpu=gpu, node=gpu.node, period=DateTimeTZRange(start, end, "[)"))
        for gpu in gpus
    )
    return lease


@pytest.fixture
def booking(db: None, settings: Any, acme: Organization, alice: User) -> "Booking":
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


@dataclass
class Booking:
    """Books as Alice (owner of Acme) with her SSH key, through `lease_book`."""

    organization: Organization
    user: User
    key: SshKey

    def reserved(self, node: Node, gpus: int, *, start: datetime, end: datetime) -> Lease:
        return lease_book(
            user=self.user,
            organization=self.organization,
            region=node.cluster.region,
            gpus=gpus,
            kind=LeaseKind.RESERVED,
            start=start,
            end=end,
            ssh_keys=[self.key],
        )

    def on_demand(self, node: Node, gpus: int) -> Lease:
        return lease_book(
            user=self.user,
            organization=self.organization,
            region=node.cluster.region,
            gpus=gpus,
            kind=LeaseKind.ON_DEMAND,
            ssh_keys=[self.key],
        )


def whole_second(after: timedelta) -> datetime:
    """The first whole second at least `after` from now (booking's step, shortened in tests)."""
    moment = timezone.now() + after
    return moment.replace(microsecond=0) + timedelta(seconds=1 if moment.microsecond else 0)


def nodes_of(lease: Lease) -> set[str]:
    """Hostnames of the nodes a lease was placed on."""
    return set(lease.allocations.values_list("node__hostname", flat=True))


def gpus_of(node: Node, indices: list[int] | None = None) -> list[GPU]:
    """The node's GPUs (all, or those with these indices), in index order."""
    gpus = node.gpus.order_by("index").select_related("node__cluster__region")
    return list(gpus if indices is None else gpus.filter(index__in=indices))


@dataclass
class Fleet:
    """Simulated nodes served over HTTP, and their rows in the database."""

    sim: Any
    base_url: str
    lease_root: Path
    nodes: list[Node]

    def keys_file(self, node: Node, lease: Lease) -> Path:
        return (
            self.lease_root / node.hostname / account_for_lease(str(lease.public_id)) / ".ssh/authorized_keys"
        )


def make_nodes(count: int, base_url: str, *, prefix: str = "sim") -> list[Node]:
    """`count` nodes with eight GPUs each, whose agents are under `base_url`."""
    cluster = ClusterFactory()
    token = encrypt_agent_token(AGENT_TOKEN)
    nodes = []
    for n in range(count):
        hostname = f"{prefix}-{cluster.name}-n{n:03d}"
        nodes.append(
            NodeFactory(
                cluster=cluster,
                hostname=hostname,
                agent_url=f"{base_url}/nodes/{hostname}/",
                agent_token_encrypted=token,
            )
        )
    return nodes


@pytest.fixture
def fleet_of(db: None, tmp_path: Path) -> Iterator[Callable[..., Fleet]]:
    """`fleet_of(3)`: three nodes in the database, served by a simulated agent over loopback HTTP."""
    stops: list[Callable[[], None]] = []

    def make(count: int, *, prefix: str = "sim") -> Fleet:
        port = free_port("RUNTIME_TEST_PORTS", "18300-18400")
        nodes = make_nodes(count, f"http://127.0.0.1:{port}", prefix=prefix)
        sim = SimulatedFleet([node.hostname for node in nodes], tmp_path / "leases")
        base_url, stop = start_in_thread(sim, token=AGENT_TOKEN, port=port)
        stops.append(stop)
        return Fleet(sim, base_url, tmp_path / "leases", nodes)

    yield make
    for stop in stops:
        stop()
