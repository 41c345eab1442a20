"""Creating the fleet: regions, clusters of 32 nodes, eight GPUs a node."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction

from clusters.choices import GPUS_PER_NODE, LeaseKind, Pool
from clusters.models import GPU, Cluster, Node, PriceBookEntry, Region
from clusters.services.agent_tokens import encrypt_agent_token
from nodeagent.protocol import simulated_gpu_uuid

REGIONS = (
    ("us-tx-1", "Texas 1", "Texas", "tx1"),
    ("us-va-1", "Virginia 1", "Virginia", "va1"),
    ("us-wa-1", "Washington 1", "Washington", "wa1"),
)
NODES_PER_CLUSTER = 32
# Each region's SSH gateway (the jump host in front of its nodes), and the one cluster whose nodes
# have public addresses of their own (documentation addresses: 198.51.100.0/24, RFC 5737).
SSH_GATEWAY_PORT = 2222
PUBLIC_CLUSTER = "wa1-c01"
PUBLIC_NETWORK = "198.51.100"
BATCH = 2000
PRICES_FROM = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT_PRICES = {LeaseKind.ON_DEMAND: Decimal("2.4900"), LeaseKind.RESERVED: Decimal("1.9900")}


@dataclass(frozen=True)
class SeedResult:
    """How many rows the seed created this time."""

    nodes_created: int
    gpus_created: int


def gpu_uuid(hostname: str, index: int) -> str:
    """The GPU's UUID: the one the simulated node agent reports for it."""
    return simulated_gpu_uuid(hostname, index)


def hostname_for(prefix: str, cluster_number: int, node_number: int) -> str:
    """Hostnames such as tx1-c01-n001."""
    return f"{prefix}-c{cluster_number:02d}-n{node_number:03d}"


def _nodes_per_region(total: int) -> list[int]:
    share, extra = divmod(total, len(REGIONS))
    return [share + (1 if i < extra else 0) for i in range(len(REGIONS))]


def _agent_url(agent_base: str, hostname: str) -> str:
    return f"{agent_base.rstrip('/')}/nodes/{hostname}/" if agent_base else ""


@transaction.atomic
def fleet_seed(
    *, nodes: int, early_stage_share: float = 0.25, agent_base: str = "", agent_token: str = ""
) -> SeedResult:
    """Create the fleet idempotently: existing nodes and GPUs are kept as they are."""
    token = encrypt_agent_token(agent_token) if agent_token else ""
    new_nodes: list[Node] = []
    regions = zip(REGIONS, _nodes_per_region(nodes), strict=True)
    for region_number, ((code, name, state, prefix), count) in enumerate(regions, start=1):
        region, _ = Region.objects.get_or_create(code=code, defaults={"name": name, "us_state": state})
        _seed_gateway(region)
        early_from = count - round(count * early_stage_share)
        for i in range(count):
            cluster_number, node_number = divmod(i, NODES_PER_CLUSTER)
            cluster, _ = _cluster(region, f"{prefix}-c{cluster_number + 1:02d}")
            hostname = hostname_for(prefix, cluster_number + 1, node_number + 1)
            pool = Pool.EARLY_STAGE if i >= early_from else Pool.GENERAL
            new_nodes.append(
                Node(
                    cluster=cluster,
                    hostname=hostname,
                    pool=pool,
                    agent_url=_agent_url(agent_base, hostname),
                    agent_token_encrypted=token,
                    private_address=private_address(region_number, cluster_number + 1, node_number + 1),
                    public_address=_public_address(cluster.name, node_number + 1),
                )
            )
    existing = set(Node.objects.values_list("hostname", flat=True))
    created = Node.objects.bulk_create([n for n in new_nodes if n.hostname not in existing], batch_size=BATCH)
    gpus_created = _create_gpus()
    _seed_prices()
    return SeedResult(nodes_created=len(created), gpus_created=gpus_created)


def gateway_host(region_code: str) -> str:
    """The SSH gateway of a region, such as ssh.us-tx-1.voltpark.example."""
    return f"ssh.{region_code}.voltpark.example"


def _seed_gateway(region: Region) -> None:
    # Staff may have set the gateway in the admin: the seed fills it only when empty.
    if not region.ssh_gateway_host:
        region.ssh_gateway_host, region.ssh_gateway_port = gateway_host(region.code), SSH_GATEWAY_PORT
        region.save(update_fields=["ssh_gateway_host", "ssh_gateway_port"])


def private_address(region_number: int, cluster_number: int, node_number: int) -> str:
    """The node's address on its cluster's network: 10.<region>.<cluster>.<node>."""
    return f"10.{region_number}.{cluster_number}.{node_number}"


def _public_address(cluster: str, node_number: int) -> str | None:
    return f"{PUBLIC_NETWORK}.{node_number}" if cluster == PUBLIC_CLUSTER else None


def _cluster(region: Region, name: str) -> tuple[Cluster, bool]:
    return Cluster.objects.get_or_create(name=name, defaults={"region": region})


def _create_gpus() -> int:
    have = set(GPU.objects.values_list("node_id", flat=True).distinct())
    missing = Node.objects.exclude(pk__in=have).values_list("pk", "hostname")
    gpus = [
        GPU(node_id=pk, index=i, uuid=gpu_uuid(hostname, i))
        for pk, hostname in missing
        for i in range(GPUS_PER_NODE)
    ]
    GPU.objects.bulk_create(gpus, batch_size=BATCH)
    return len(gpus)


def _seed_prices() -> None:
    for kind, price in DEFAULT_PRICES.items():
        PriceBookEntry.objects.get_or_create(
            kind=kind, region=None, effective_from=PRICES_FROM, defaults={"price_per_gpu_hour": price}
        )
