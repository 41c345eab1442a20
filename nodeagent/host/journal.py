"""The host backend's journal: what it is doing for each lease, written before it touches the host.

One root-only JSON file per account. A lease is `installing` before its account is made and
`active` once everything is in; `revoking` before anything is taken away and `revoked` once all of
it is gone. An agent restarted half-way reads the phase and the repeated request carries on from it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from nodeagent.leases import write_atomically
from nodeagent.protocol import Peer

INSTALLING = "installing"
ACTIVE = "active"
REVOKING = "revoking"
REVOKED = "revoked"
LIVE = (INSTALLING, ACTIVE, REVOKING)


@dataclass(frozen=True)
class HostLease:
    """What the agent did, or is doing, for one lease on this node."""

    lease_id: str
    account: str
    gpu_indices: tuple[int, ...]
    keys: tuple[str, ...]
    phase: str
    sudo: bool = False
    peers: tuple[Peer, ...] = ()
    # Known once the account exists; kept so that a cleanup resumed after a crash knows it.
    uid: int | None = None
    # Keys this change takes away, until the SSH sessions of the account have been closed.
    dropped_keys: tuple[str, ...] = ()
    placement: int = 0  # the platform's placement of the lease on this node (see protocol)

    def moved(self, phase: str, **changes: object) -> HostLease:
        """The same lease in another phase."""
        return replace(self, phase=phase, **changes)  # type: ignore[arg-type]

    def to_json(self) -> str:
        """The journal file's content."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> HostLease:
        """Read a journal file back."""
        raw = json.loads(text)
        return cls(
            lease_id=raw["lease_id"],
            account=raw["account"],
            gpu_indices=tuple(raw["gpu_indices"]),
            keys=tuple(raw["keys"]),
            phase=raw["phase"],
            sudo=raw.get("sudo", False),
            peers=tuple(Peer(**peer) for peer in raw.get("peers", ())),
            uid=raw.get("uid"),
            dropped_keys=tuple(raw.get("dropped_keys", ())),
            placement=raw.get("placement", 0),
        )


class Journal:
    """The journal files of one node, under the lease root (0700, root's)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, account: str) -> Path:
        """The journal file of an account."""
        return self.root / f"{account}.json"

    def get(self, account: str) -> HostLease | None:
        """The lease last journalled for this account, or None."""
        try:
            return HostLease.from_json(self.path(account).read_text())
        except FileNotFoundError:
            return None

    def write(self, lease: HostLease) -> None:
        """Record the lease durably before the step it announces."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomically(self.path(lease.account), lease.to_json(), 0o600, durable=True)
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def all(self) -> list[HostLease]:
        """Every journalled lease of the node."""
        if not self.root.is_dir():
            return []
        return [HostLease.from_json(path.read_text()) for path in sorted(self.root.glob("*.json"))]

    def gpus_held(self, *, besides: str) -> set[int]:
        """GPUs held by live leases other than the account `besides`."""
        return {
            i
            for lease in self.all()
            if lease.phase in LIVE and lease.account != besides
            for i in lease.gpu_indices
        }
