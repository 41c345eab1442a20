"""The body of a lease's PUT, checked before anything on the node changes (the body is documented
in nodeagent/protocol.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nodeagent.keys import normalize_public_keys
from nodeagent.model import AgentError
from nodeagent.protocol import InvalidPeer, Peer, parse_peers


@dataclass(frozen=True)
class LeaseRequest:
    """What a PUT asks of this node for one lease, validated."""

    lease_id: str
    gpu_indices: tuple[int, ...]
    keys: tuple[str, ...]
    sudo: bool = False
    peers: tuple[Peer, ...] = ()
    placement: int = 0


def parse_lease_request(lease_id: str, body: dict[str, Any], gpu_count: int) -> LeaseRequest:
    """Validate every field of the body; the first fault is a 400 naming its field.

    Fields the agent does not know are ignored, so a newer platform can talk to an older agent.
    """
    keys = normalize_public_keys(body.get("ssh_public_keys"))
    indices = gpu_indices(body.get("gpu_indices"), gpu_count)
    sudo = _sudo(body.get("sudo", False), whole_node=len(indices) == gpu_count)
    try:
        peers = parse_peers(body.get("peers", []))
    except InvalidPeer as error:
        raise AgentError(400, "invalid_peers", str(error), error.field) from None
    return LeaseRequest(lease_id, indices, keys, sudo, peers, _placement(body.get("placement", 0)))


def gpu_indices(value: object, gpu_count: int) -> tuple[int, ...]:
    """Validate gpu_indices: distinct integers naming GPUs of this node."""
    field = "gpu_indices"
    if not isinstance(value, list) or not value:
        raise AgentError(400, "invalid_body", "gpu_indices must be a non-empty list of integers.", field)
    if any(isinstance(i, bool) or not isinstance(i, int) for i in value):
        raise AgentError(400, "invalid_body", "gpu_indices must contain only integers.", field)
    if len(set(value)) != len(value):
        raise AgentError(400, "invalid_body", "gpu_indices must not repeat a GPU.", field)
    wrong = [i for i in value if not 0 <= i < gpu_count]
    if wrong:
        raise AgentError(
            400,
            "gpu_index_out_of_range",
            f"GPU index {wrong[0]} is out of range: this node has {gpu_count} readable GPUs.",
            field,
        )
    return tuple(sorted(value))


def _placement(value: object) -> int:
    """placement is a whole number from 0 (an older platform sends none: 0)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise AgentError(400, "invalid_body", "placement must be a whole number from 0.", "placement")
    return value


def _sudo(value: object, *, whole_node: bool) -> bool:
    """sudo is a boolean, and true only for a lease of the whole node."""
    if not isinstance(value, bool):
        raise AgentError(400, "invalid_body", "sudo must be true or false.", "sudo")
    if value and not whole_node:
        raise AgentError(
            400,
            "sudo_not_allowed",
            "sudo is given only to a lease of every GPU of the node; tenants sharing a node never get it.",
            "sudo",
        )
    return value
