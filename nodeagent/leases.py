"""Lease accounts on disk: authorized_keys files and tombstones of revoked leases."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodeagent.model import AgentError
from nodeagent.protocol import account_for_lease

ACTIVE = "active"
REVOKED = "revoked"
LEASE_FILE = "lease.json"


@dataclass(frozen=True)
class LeaseRecord:
    """What the agent remembers of a lease, kept in <account>/lease.json."""

    lease_id: str
    gpu_indices: tuple[int, ...]
    keys: tuple[str, ...]
    state: str
    placement: int = 0

    def to_json(self) -> str:
        """Encode the record for lease.json."""
        body = {**self.__dict__, "gpu_indices": list(self.gpu_indices), "keys": list(self.keys)}
        return json.dumps(body, indent=1)


def write_atomically(path: Path, text: str, mode: int, *, durable: bool = False) -> None:
    """Write a file so that a reader sees the old or the new content, never half.

    `durable` also syncs the content to disk before the rename, so a power cut cannot leave an
    empty file in its place (the host journal's need; the simulator's thousands of files skip it).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class LeaseStore:
    """Leases of one node under root/<account>/ (.ssh/authorized_keys, lease.json)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()

    def account_dir(self, lease_id: str) -> Path:
        """Directory of the lease's account."""
        return self.root / account_for_lease(lease_id)

    def keys_path(self, lease_id: str) -> Path:
        """Path of the lease's authorized_keys file."""
        return self.account_dir(lease_id) / ".ssh" / "authorized_keys"

    def get(self, lease_id: str) -> LeaseRecord | None:
        """The lease's record, or None when this node never saw it."""
        path = self.account_dir(lease_id) / LEASE_FILE
        try:
            raw = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if raw.get("lease_id") != lease_id:
            return None
        return LeaseRecord(
            raw["lease_id"],
            tuple(raw["gpu_indices"]),
            tuple(raw["keys"]),
            raw["state"],
            raw.get("placement", 0),
        )

    def _check_account_free(self, lease_id: str) -> None:
        """Refuse a lease whose account name is held by another active lease."""
        path = self.account_dir(lease_id) / LEASE_FILE
        try:
            raw = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return
        if raw.get("lease_id") != lease_id and raw.get("state") == ACTIVE:
            raise AgentError(
                409,
                "account_conflict",
                f"Account {account_for_lease(lease_id)} is in use by another active lease.",
            )

    def install(
        self, lease_id: str, gpu_indices: tuple[int, ...], keys: tuple[str, ...], placement: int = 0
    ) -> tuple[LeaseRecord, bool]:
        """Write the lease's keys; returns the record and whether anything changed."""
        with self._lock:
            self._check_account_free(lease_id)
            current = self.get(lease_id)
            if current is not None and current.state == REVOKED and placement <= current.placement:
                # A late retry of a start must not give access back after the end; a later placement
                # of the lease (moved away and back before it started) may.
                raise AgentError(
                    409, "lease_revoked", f"Lease {lease_id} was revoked and cannot be reinstalled."
                )
            wanted = LeaseRecord(lease_id, gpu_indices, keys, ACTIVE, placement)
            keys_path = self.keys_path(lease_id)
            if current == wanted and keys_path.exists():
                return wanted, False
            keys_text = "".join(f"{key}\n" for key in keys)
            # Root-owned and world-readable: sshd reads it as the lease user and
            # StrictModes accepts root ownership, while the user cannot edit it.
            write_atomically(keys_path, keys_text, 0o644)
            write_atomically(self.account_dir(lease_id) / LEASE_FILE, wanted.to_json(), 0o600)
            return wanted, True

    def revoke(self, lease_id: str) -> tuple[LeaseRecord, bool]:
        """Remove the lease's keys and leave a tombstone; 404 when never seen."""
        with self._lock:
            current = self.get(lease_id)
            if current is None:
                raise AgentError(404, "unknown_lease", f"This node has no lease {lease_id}.")
            keys_path = self.keys_path(lease_id)
            if current.state == REVOKED and not keys_path.exists():
                return current, False
            keys_path.unlink(missing_ok=True)
            tombstone = LeaseRecord(lease_id, current.gpu_indices, (), REVOKED, current.placement)
            write_atomically(self.account_dir(lease_id) / LEASE_FILE, tombstone.to_json(), 0o600)
            return tombstone, True

    def active_gpus(self) -> frozenset[int]:
        """GPU indices held by the node's active leases."""
        return frozenset(index for record in self._active() for index in record.get("gpu_indices", ()))

    def active_leases(self) -> tuple[str, ...]:
        """Ids of the node's active leases (keys installed), sorted."""
        return tuple(sorted(str(record.get("lease_id")) for record in self._active()))

    def _active(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        records = []
        for lease_file in self.root.glob(f"*/{LEASE_FILE}"):
            try:
                raw = json.loads(lease_file.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(raw, dict) and raw.get("state") == ACTIVE:
                records.append(raw)
        return records
