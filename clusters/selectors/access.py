"""How a lease's people reach its nodes: the SSH account, host, port and jump host of each node, and
the command and `~/.ssh/config` block that use them.

A node with a public address is reached directly; any other through its region's SSH gateway
(`ssh -J`), where the lease's account logs in with the lease's keys. Without either (a laptop's
demo fleet), the command names the node's hostname.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from clusters.models import Lease, Region
from nodeagent.protocol import account_for_lease

SSH_PORT = 22


@dataclass(frozen=True)
class JumpHost:
    """The region's gateway, as `ssh -J` and `ProxyJump` name it."""

    user: str
    host: str
    port: int

    @property
    def spec(self) -> str:
        port = f":{self.port}" if self.port != SSH_PORT else ""
        return f"{self.user}@{self.host}{port}"


@dataclass(frozen=True)
class SshAccess:
    """How to log in to one node of a lease."""

    hostname: str
    user: str
    host: str
    port: int
    jump: JumpHost | None

    @property
    def alias(self) -> str:
        """The node's name in the `~/.ssh/config` block: `ssh voltpark-<hostname>`."""
        return f"voltpark-{self.hostname}"

    @property
    def command_parts(self) -> list[str]:
        """The command's words; a page lays them out without breaking inside one."""
        parts = ["ssh"]
        if self.jump is not None:
            parts += ["-J", self.jump.spec]
        if self.port != SSH_PORT:
            parts += ["-p", str(self.port)]
        return [*parts, f"{self.user}@{self.host}"]

    @property
    def command_words(self) -> list[list[str]]:
        """The command's words, each in the pieces a narrow screen may break it into: only the jump
        host's `user@` and `host:port`, so the account's name is never cut."""
        words = [[part] for part in self.command_parts]
        if self.jump is not None:
            words[2] = [f"{self.jump.user}@", self.jump.spec.removeprefix(f"{self.jump.user}@")]
        return words

    @property
    def command(self) -> str:
        return " ".join(self.command_parts)

    @property
    def config(self) -> str:
        lines = [f"Host {self.alias}", f"    HostName {self.host}", f"    User {self.user}"]
        if self.port != SSH_PORT:
            lines.append(f"    Port {self.port}")
        if self.jump is not None:
            lines.append(f"    ProxyJump {self.jump.spec}")
        return "\n".join(lines)

    def as_json(self) -> dict[str, object]:
        jump = self.jump
        return {
            "user": self.user,
            "host": self.host,
            "port": self.port,
            "jump_host": None if jump is None else {"user": jump.user, "host": jump.host, "port": jump.port},
        }


def ssh_access(lease: Lease, region: Region, hostname: str, public_address: str | None) -> SshAccess:
    """How the lease's account reaches the node `hostname` (with its public address, if it has one)."""
    user = account_for_lease(str(lease.public_id))
    if public_address:
        return SshAccess(hostname, user, public_address, SSH_PORT, None)
    jump = None
    if region.ssh_gateway_host:
        jump = JumpHost(user, region.ssh_gateway_host, region.ssh_gateway_port)
    return SshAccess(hostname, user, hostname, SSH_PORT, jump)


def ssh_config(accesses: Sequence[SshAccess]) -> str:
    """A `~/.ssh/config` block with one Host per node of the lease."""
    return "\n\n".join(access.config for access in accesses) + "\n"


# --- Multi-node leases: the hostfile, a torchrun example, and the lease as dstack and SkyPilot see it

RENDEZVOUS_PORT = 29500
IDENTITY_FILE = "~/.ssh/id_ed25519"  # the tenant's own private key: the exports say to change it


@dataclass(frozen=True)
class LeaseHost:
    """A node a lease holds GPUs on: how to log in to it, and how its peers and the tools see it."""

    access: SshAccess
    gpu_indices: list[int]
    private_address: str | None

    @property
    def hostname(self) -> str:
        return self.access.hostname

    @property
    def slots(self) -> int:
        return len(self.gpu_indices)


def hostfile(hosts: Sequence[LeaseHost]) -> str:
    """An MPI/DeepSpeed hostfile: one line per node, `<host> slots=<GPUs>`."""
    return "".join(f"{host.access.hostname} slots={host.slots}\n" for host in hosts)


def torchrun_example(lease: Lease, hosts: Sequence[LeaseHost]) -> str:
    """The torchrun command to run on every node (its rank from the hostfile's order)."""
    first = hosts[0].access.hostname
    return (
        f"torchrun --nnodes={len(hosts)} --nproc_per_node={hosts[0].slots} "
        f"--rdzv_backend=c10d --rdzv_endpoint={first}:{RENDEZVOUS_PORT} "
        f"--rdzv_id={lease.public_id} train.py"
    )


def dstack_fleet(lease: Lease, hosts: Sequence[LeaseHost]) -> dict[str, object]:
    """The lease as a dstack SSH fleet (fleet.dstack.yml): its nodes, cluster addresses and jump host."""
    entries: list[dict[str, object]] = []
    for host in hosts:
        entry: dict[str, object] = {"hostname": host.access.host}
        if host.private_address:
            entry["internal_ip"] = host.private_address
        if host.access.jump is not None:
            jump = host.access.jump
            entry["proxy_jump"] = {
                "hostname": jump.host,
                "port": jump.port,
                "user": jump.user,
                "identity_file": IDENTITY_FILE,
            }
        entries.append(entry)
    return {
        "type": "fleet",
        "name": _fleet_name(lease),
        "placement": "cluster" if len(hosts) > 1 else "any",
        "ssh_config": {"user": hosts[0].access.user, "identity_file": IDENTITY_FILE, "hosts": entries},
    }


def skypilot_node_pools(lease: Lease, hosts: Sequence[LeaseHost]) -> dict[str, object]:
    """The lease as a SkyPilot SSH node pool (~/.sky/ssh_node_pools.yaml).

    SkyPilot's pools have no jump-host field; a host named by a `~/.ssh/config` Host is reached with
    that entry's settings, so the pool names the aliases of the lease's config block.
    """
    return {
        _fleet_name(lease): {
            "hosts": [host.access.alias for host in hosts],
            "user": hosts[0].access.user,
            "identity_file": IDENTITY_FILE,
        }
    }


def _fleet_name(lease: Lease) -> str:
    return f"voltpark-{str(lease.public_id)[:8]}"


EXPORTS = {"fleet.dstack.yml": dstack_fleet, "ssh_node_pools.yaml": skypilot_node_pools}


def export_yaml(filename: str, lease: Lease, hosts: Sequence[LeaseHost]) -> str:
    """One of EXPORTS as the file to download."""
    header = f"# {filename} for Voltpark lease {lease.public_id}: set identity_file to your private key.\n"
    return header + yaml.safe_dump(EXPORTS[filename](lease, hosts), sort_keys=False)
