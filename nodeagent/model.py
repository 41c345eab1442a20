"""What a node agent reads and does, independent of HTTP and of the backend."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from nodeagent.protocol import Peer


def utc_iso(moment: datetime) -> str:
    """Format an aware datetime as ISO 8601 UTC with a Z suffix."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Xid:
    """The last XID critical error a GPU reported, and when the agent saw it."""

    code: int
    at: str


@dataclass(frozen=True)
class GpuReading:
    """One GPU's readings; a lost GPU has every reading None."""

    index: int
    uuid: str | None
    name: str | None
    utilization_pct: int | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    temperature_c: int | None = None
    power_draw_w: float | None = None
    power_limit_w: float | None = None
    ecc_uncorrectable_volatile: int | None = None
    last_xid: Xid | None = None
    lost: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The GPU as the platform's poller parses it (asdict is too slow for the simulator)."""
        xid = self.last_xid
        return {
            "index": self.index,
            "uuid": self.uuid,
            "name": self.name,
            "utilization_pct": self.utilization_pct,
            "memory_used_bytes": self.memory_used_bytes,
            "memory_total_bytes": self.memory_total_bytes,
            "temperature_c": self.temperature_c,
            "power_draw_w": self.power_draw_w,
            "power_limit_w": self.power_limit_w,
            "ecc_uncorrectable_volatile": self.ecc_uncorrectable_volatile,
            "last_xid": None if xid is None else {"code": xid.code, "at": xid.at},
            "lost": self.lost,
        }


def encode_gpus(gpus: tuple[GpuReading, ...]) -> bytes:
    """Encode GPU readings as the JSON list the platform parses."""
    return json.dumps([gpu.as_dict() for gpu in gpus]).encode()


@dataclass(frozen=True)
class Reading:
    """One reading of all of a node's GPUs; error set means NVML itself failed."""

    node: str
    backend: str
    read_at: datetime
    gpus: tuple[GpuReading, ...] = ()
    error: str | None = None
    # Encoded once per reading: the simulator serves the same GPUs many times.
    gpus_json: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        """Encode the GPU list unless a copy already carries it."""
        if not self.gpus_json:
            object.__setattr__(self, "gpus_json", encode_gpus(self.gpus))

    @property
    def degraded(self) -> bool:
        """Whether NVML itself failed, so no GPU could be read."""
        return self.error is not None

    def to_json(self, leases: tuple[str, ...] = ()) -> bytes:
        """Encode the reading as the body of GET /v1/gpus, with the ids of the leases installed."""
        head = {
            "node": self.node,
            "backend": self.backend,
            "degraded": self.degraded,
            "error": self.error,
            "read_at": utc_iso(self.read_at),
            "leases": list(leases),
        }
        return json.dumps(head)[:-1].encode() + b', "gpus": ' + self.gpus_json + b"}"


@dataclass(frozen=True)
class InstallResult:
    """What installing a lease's keys did; a PUT that took keys away closed the open SSH sessions."""

    lease_id: str
    account: str
    gpu_indices: tuple[int, ...]
    installed_keys: int
    changed: bool
    sessions_closed: int = 0


@dataclass(frozen=True)
class RevokeResult:
    """What revoking a lease did."""

    lease_id: str
    processes_stopped: int
    gpus_clean: bool
    changed: bool
    revoked: bool = True


class AgentError(Exception):
    """A request the agent must refuse; becomes a JSON 4xx answer naming the `field` at fault."""

    def __init__(self, status: int, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field


class Backend(Protocol):
    """What the HTTP layer needs from a node: readings and lease key changes."""

    name: str
    hostname: str
    # True when calls touch hardware or may sleep, so they belong off the event loop.
    blocking: bool

    def gpu_count(self) -> int:
        """Number of GPUs the node has (0 when NVML is down)."""
        ...

    def read_gpus(self) -> Reading:
        """Read every GPU; never raises for hardware or NVML failures."""
        ...

    def install_lease(
        self,
        lease_id: str,
        gpu_indices: tuple[int, ...],
        keys: tuple[str, ...],
        *,
        sudo: bool = False,
        peers: tuple[Peer, ...] = (),
        placement: int = 0,
    ) -> InstallResult:
        """Install a lease's validated SSH keys for its account (sudo, peers, placement: see
        protocol)."""
        ...

    def revoke_lease(self, lease_id: str) -> RevokeResult:
        """Remove a lease's keys and stop its processes."""
        ...

    def installed_leases(self) -> tuple[str, ...]:
        """Ids of the leases installed here and not revoked (the platform revokes any it does not
        hold live on this node: clusters/services/reconciliation.py)."""
        ...
