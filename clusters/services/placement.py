"""Placement: which GPUs a new lease gets, chosen best-fit and locked against concurrent bookings.

Best fit: a lease of 1-8 GPUs goes to the node with the fewest free GPUs that still fits it
(partly used nodes fill first), in the cluster with the fewest wholly free nodes (clusters
with room for large leases stay whole), then by hostname, so the choice is deterministic for
the same state. A larger lease takes whole nodes in the cluster with the fewest wholly free
nodes that still fits it. Pools are tried in the organization's order of preference.

Concurrency: the chosen node rows are locked `FOR NO KEY UPDATE SKIP LOCKED`, so concurrent
bookings of one region spread over different nodes instead of all colliding on the best one;
only when every candidate is locked does a booking wait for the best one. The free GPUs are
then read again in a fresh statement (READ COMMITTED), which sees every booking committed by
an earlier holder of the lock. The exclusion constraint still referees:
a writer that does not take these locks makes the insert fail and booking retries.
"""

from dataclasses import dataclass

from django.db import connection
from django.db.backends.utils import CursorWrapper

from clusters.capacity import FREE_NODES_CTE, Window, capacity_params
from clusters.choices import GPUS_PER_NODE

# How many nodes one placement may lock and find already taken before it gives up.
MAX_STALE_NODES = 8
SKIP, WAIT = "SKIP LOCKED", ""

LOCK_ONE_NODE_SQL = f"""
WITH {FREE_NODES_CTE}
SELECT n.id
FROM clusters_node n
JOIN ranked r ON r.node_id = n.id
WHERE r.free >= %(gpus)s AND n.state = 'available' AND n.id <> ALL(%(skip)s::bigint[])
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

FREE_GPUS_SQL = """
SELECT g.id, g.node_id
FROM clusters_gpu g
WHERE g.node_id = ANY(%(ids)s::bigint[]) AND g.health = 'healthy' AND NOT (g.needs_cleanup AND %(soon)s)
  AND NOT EXISTS (
      SELECT 1 FROM clusters_allocation a
      WHERE a.gpu_id = g.id AND a.is_live AND a.period && tstzrange(%(start)s, %(end)s, '[)')
  )
ORDER BY array_position(%(ids)s::bigint[], g.node_id), g.index
"""


@dataclass(frozen=True)
class PlacedGpu:
    """A GPU chosen for the lease, with its node."""

    gpu_id: int
    node_id: int


def place(*, region_id: int, window: Window, gpus: int, pools: list[str]) -> list[PlacedGpu] | None:
    """Choose and lock GPUs for `gpus` in the region (inside a transaction); None if none fit."""
    params = capacity_params(region_id=region_id, window=window, pools=pools)
    if gpus <= GPUS_PER_NODE:
        return _place_on_one_node(params, gpus)
    return _place_on_whole_nodes(params, gpus // GPUS_PER_NODE)


def _place_on_one_node(params: dict[str, object], gpus: int) -> list[PlacedGpu] | None:
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
            free = _free_gpus(cursor, params, [row[0]])
            if len(free) >= gpus:
                return free[:gpus]
            stale.append(row[0])
    return None


def _place_on_whole_nodes(params: dict[str, object], nodes: int) -> list[PlacedGpu] | None:
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
            free = _free_gpus(cursor, params, locked)
            if len(free) == nodes * GPUS_PER_NODE:
                return free
    return None


def _free_gpus(cursor: CursorWrapper, params: dict[str, object], node_ids: list[int]) -> list[PlacedGpu]:
    cursor.execute(FREE_GPUS_SQL, {**params, "ids": node_ids})
    return [PlacedGpu(gpu_id=gpu_id, node_id=node_id) for gpu_id, node_id in cursor.fetchall()]
