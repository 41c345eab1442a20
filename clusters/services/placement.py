"""Placement: which GPUs a new lease gets, packed then best fit, locked against concurrent bookings.

The rules run in the database, in the functions of clusters/sql/booking.sql, so a booking is one
round trip after the organization's lock (`lease_place` here calls clusters_lease_book):

- Packing, then best fit, in the organization's first pool that fits: a lease of 1-8 GPUs goes to
  the node where it takes the fewest unbooked GPUs (with no booking from now on: what on-demand
  can take), so a reserved lease lands on GPUs that already carry other bookings; then to the
  node with the fewest free GPUs that still fits it (partly used nodes fill first), in the cluster
  with the fewest wholly free nodes (clusters with room for large leases stay whole), then by
  hostname, so the choice is deterministic for the same state. On the node, GPUs carrying other
  bookings go first. A larger lease takes whole nodes of one cluster, packed the same way, in the
  cluster with the fewest wholly free nodes that still fits it.
- Concurrency: the chosen node rows are locked `FOR NO KEY UPDATE SKIP LOCKED`, so concurrent
  bookings of one region spread over different nodes instead of all colliding on the best one;
  only when every candidate is locked does a booking wait for the best one. The allocations are
  then written by one statement that reads the locked nodes' free GPUs afresh (READ COMMITTED: a
  new statement sees every booking committed by an earlier holder of the lock) and inserts them
  only if there are enough. The exclusion constraint still referees: a writer that does not take
  these locks makes the insert fail and booking retries.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection

from accounts.models import AuditEntry, SshKey
from clusters.models import Lease
from core.db import row_json

QUOTA_EXCEEDED, NO_CAPACITY, LOST_RACE = "quota_exceeded", "no_capacity", "lost_race"

BOOK_SQL = (
    "SELECT clusters_lease_book(%s::jsonb, %s::jsonb, %s::bigint[], %s::text[], %s::boolean, %s::integer)"
)
BOOK_TOGETHER_SQL = (
    "SELECT clusters_leases_book("
    "%s::jsonb[], %s::jsonb[], %s::jsonb, %s::jsonb, %s::boolean[], %s::integer[])"
)


@dataclass(frozen=True)
class PlacedGpu:
    """A GPU allocated to the lease: the allocation row, the GPU and where it is."""

    allocation_id: int
    gpu_id: int
    node_id: int
    hostname: str
    index: int


@dataclass(frozen=True)
class Placement:
    """What the database did with a booking: the lease's id and its GPUs, or why it refused."""

    lease_id: int | None = None
    placed: tuple[PlacedGpu, ...] = ()
    refusal: str | None = None
    gpus_held: int = 0


def lease_place(
    *,
    lease: Lease,
    audit: AuditEntry,
    ssh_keys: Sequence[SshKey],
    pools: list[str],
    soon: bool,
    quota: int,
) -> Placement:
    """Check the quota, insert the lease row and its audit row as built, and place it (one statement).

    Call it inside the booking's transaction, holding the organization's row lock; a refusal
    leaves rows behind that the caller's rollback removes.
    """
    params: list[Any] = [row_json(lease), row_json(audit), [key.pk for key in ssh_keys], pools, soon, quota]
    with connection.cursor() as cursor:
        cursor.execute(BOOK_SQL, params)
        # jsonb arrives as text: Django's connection leaves its decoding to JSONField.
        answer = json.loads(cursor.fetchone()[0])
    return _placement(answer)


@dataclass(frozen=True)
class LeaseToPlace:
    """One lease of a batch for `leases_place`: what `lease_place` takes for one."""

    lease: Lease
    audit: AuditEntry
    ssh_keys: Sequence[SshKey]
    pools: list[str]
    soon: bool
    quota: int


def leases_place(*, batch: Sequence[LeaseToPlace]) -> list[Placement]:
    """`lease_place` for each lease of the batch in order, in one statement (clusters_leases_book),
    up to the first refused: one Placement per lease tried, the last a refusal if one was
    (`LOST_RACE` when another writer took a GPU). The refused one left nothing behind; the ones
    before it are written, in the caller's transaction."""
    params: list[Any] = [
        [row_json(item.lease) for item in batch],
        [row_json(item.audit) for item in batch],
        json.dumps([[key.pk for key in item.ssh_keys] for item in batch]),
        json.dumps([item.pools for item in batch]),
        [item.soon for item in batch],
        [item.quota for item in batch],
    ]
    with connection.cursor() as cursor:
        cursor.execute(BOOK_TOGETHER_SQL, params)
        answers = json.loads(cursor.fetchone()[0])
    return [_placement(answer) for answer in answers]


def _placement(answer: dict[str, Any]) -> Placement:
    if "refusal" in answer:
        return Placement(refusal=answer["refusal"], gpus_held=answer.get("gpus_held", 0))
    return Placement(lease_id=answer["lease"], placed=tuple(PlacedGpu(*gpu) for gpu in answer["placed"]))
