"""Placement: which GPUs a new lease gets, chosen best-fit and locked against concurrent bookings.

Best fit: a lease of 1-8 GPUs goes to the node with the fewest free GPUs that still fits it
(partly used nodes fill first), in the cluster with the fewest wholly free nodes (clusters
with room for large leases stay whole), then by hostname, so the choice is deterministic for
the same state. A larger lease takes whole nodes in the cluster with the fewest wholly free
nodes that still fits it. Pools are tried in the organization's order of preference.

Concurrency: the chosen node rows are locked `FOR NO KEY UPDATE SKIP LOCKED`, so concurrent
bookings of one region spread over different nodes instead of all colliding on the best one;
only when every candidate is locked does a booking wait for the best one. The allocations are
then written by one statement that reads the locked nodes' free GPUs afresh (READ COMMITTED: a
new statement sees every booking committed by an earlier holder of the lock) and inserts them
only if there are enough, so a node taken meanwhile costs no write and no savepoint. The
exclusion constraint still referees: a writer that does not take these locks makes the insert
fail and booking retries.
"""

from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.backends.utils import CursorWrapper

from clusters.choices import GPUS_PER_NODE
from clusters.selectors.capacity import FREE_NODES_CTE, Window, capacity_params

# How many nodes one placement may lock and find already taken before it gives up.
MAX_STALE_NODES = 8
SKIP, WAIT = "SKIP LOCKED", ""

# The best candidates only (a few dozen): joined back to their node rows by primary key, which
# costs far less than joining every node of the fleet; with that many of them locked at once by
# other bookings, the booking waits for the best one instead of looking further.
CANDIDATES = 64
LOCK_ONE_NODE_SQL = f"""
WITH {FREE_NODES_CTE},
candidates AS (
    SELECT r.node_id, r.pool_rank, r.free, r.cluster_whole, r.hostname
    FROM ranked r
    WHERE r.free >= %(gpus)s AND r.node_id <> ALL(%(skip)s::bigint[])
    ORDER BY r.pool_rank, r.free, r.cluster_whole, r.hostname
    LIMIT {CANDIDATES}
)
SELECT n.id
FROM candidates r
JOIN clusters_node n ON n.id = r.node_id
WHERE n.state = 'available'
ORDER BY r.pool_rank, r.free, r.cluster_whole, r.hostname
LIMIT 1
FOR NO KEY UPDATE OF n {{wait}}
"""

CLUSTERS_WITH_WHOLE_NODES_SQL = f"""
WITH {FREE_NODES_CTE}
SELECT array_agg(r.node_id ORDER BY r.hostname)
FROM ranked r
JOIN clusters_cluster c ON c.id = r.cluster_id
WHERE r.free = {GPUS_PER_NODE}
GROUP BY r.cluster_id, c.name, r.pool_rank
HAVING count(*) >= %(nodes)s
ORDER BY r.pool_rank, count(*), c.name
"""

LOCK_NODES_SQL = """
SELECT id FROM clusters_node
WHERE id = ANY(%(ids)s::bigint[]) AND state = 'available'
ORDER BY hostname
LIMIT %(nodes)s
FOR NO KEY UPDATE {wait}
"""

# Parameters: ids (the locked nodes, in order of preference), gpus, lease, start, end, soon.
# Writes nothing unless all `gpus` are free; answers the allocations written with their places.
ALLOCATE_SQL = """
WITH free AS (
    SELECT g.id, g.node_id, g.index, n.hostname
    FROM clusters_gpu g
    JOIN clusters_node n ON n.id = g.node_id
    WHERE g.node_id = ANY(%(ids)s::bigint[]) AND g.health = 'healthy' AND NOT (g.needs_cleanup AND %(soon)s)
      AND NOT EXISTS (
          SELECT 1 FROM clusters_allocation a
          WHERE a.gpu_id = g.id AND a.is_live AND a.period && tstzrange(%(start)s, %(end)s, '[)')
      )
    ORDER BY array_position(%(ids)s::bigint[], g.node_id), g.index
    LIMIT %(gpus)s
),
written AS (
    INSERT INTO clusters_allocation (lease_id, gpu_id, node_id, period, is_live)
    SELECT %(lease)s, f.id, f.node_id, tstzrange(%(start)s, %(end)s, '[)'), true
    FROM free f
    WHERE (SELECT count(*) FROM free) = %(gpus)s
    RETURNING id, gpu_id
)
SELECT w.id, f.id, f.node_id, f.hostname, f.index
FROM written w JOIN free f ON f.id = w.gpu_id
ORDER BY f.hostname, f.index
"""


@dataclass(frozen=True)
class PlacedGpu:
    """A GPU allocated to the lease: the allocation row, the GPU and where it is."""

    allocation_id: int
    gpu_id: int
    node_id: int
    hostname: str
    index: int


def place(
    *, lease_id: int, region_id: int, window: Window, gpus: int, pools: list[str]
) -> list[PlacedGpu] | None:
    """Choose, lock and allocate `gpus` GPUs of the region to the lease (in a transaction); None: none fit."""
    params = {**capacity_params(region_id=region_id, window=window, pools=pools), "lease": lease_id}
    if gpus <= GPUS_PER_NODE:
        return _place_on_one_node(params, gpus)
    return _place_on_whole_nodes(params, gpus // GPUS_PER_NODE)


def _place_on_one_node(params: dict[str, Any], gpus: int) -> list[PlacedGpu] | None:
    stale: list[int] = []
    with connection.cursor() as cursor:
        for _ in range(MAX_STALE_NODES):
            row = None
            for wait in (SKIP, WAIT):
                cursor.execute(LOCK_ONE_NODE_SQL.format(wait=wait), {**params, "gpus": gpus, "skip": stale})
                row = cursor.fetchone()
                if row is not None:
                    break
            if row is None:
                return None
            placed = _allocate(cursor, params, [row[0]], gpus)
            if placed:
                return placed
            stale.append(row[0])
    return None


def _place_on_whole_nodes(params: dict[str, Any], nodes: int) -> list[PlacedGpu] | None:
    with connection.cursor() as cursor:
        cursor.execute(CLUSTERS_WITH_WHOLE_NODES_SQL, {**params, "nodes": nodes})
        clusters = [node_ids for (node_ids,) in cursor.fetchall()]
        # First the clusters whose nodes nobody is booking right now, then wait for the best one.
        attempts = [(SKIP, node_ids) for node_ids in clusters] + [
            (WAIT, node_ids) for node_ids in clusters[:1]
        ]
        for wait, node_ids in attempts:
            cursor.execute(LOCK_NODES_SQL.format(wait=wait), {"ids": node_ids, "nodes": nodes})
            locked = [node_id for (node_id,) in cursor.fetchall()]
            if len(locked) < nodes:
                continue
            placed = _allocate(cursor, params, locked, nodes * GPUS_PER_NODE)
            if placed:
                return placed
    return None


def _allocate(
    cursor: CursorWrapper, params: dict[str, Any], node_ids: list[int], gpus: int
) -> list[PlacedGpu]:
    """Allocate `gpus` free GPUs of the locked nodes (in their order), or nothing if too few are free."""
    cursor.execute(ALLOCATE_SQL, {**params, "ids": node_ids, "gpus": gpus})
    return [PlacedGpu(*row) for row in cursor.fetchall()]
