"""Free GPUs per node for a window: the SQL shared by availability and placement.

The busy GPUs come from one index-only range scan of the region's live allocations overlapping
the window (GiST index `allocation_region_period` on (region, period), covering node and GPU)
plus the few unplaceable GPUs (partial index `gpu_unplaceable`); each eligible node's free count
is its eight GPUs minus those. No per-GPU anti-join, no other region's rows.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from accounts.models import Organization
from clusters.choices import GPUS_PER_NODE, SINGLE_NODE_SIZES, Pool


@dataclass(frozen=True)
class Window:
    """A lease's period: [start, end), or open-ended when `end` is None (on-demand)."""

    start: datetime
    end: datetime | None

    def overlaps_soon(self, now: datetime | None = None) -> bool:
        """Whether it starts within the horizon in which GPUs awaiting cleanup are not placed."""
        now = now or timezone.now()
        return self.start < now + settings.BOOKING_CLEANUP_HORIZON

    @property
    def hours(self) -> float | None:
        return None if self.end is None else (self.end - self.start) / timedelta(hours=1)


def pools_for(organization: Organization) -> list[str]:
    """The pools an organization places in, in order of preference."""
    if organization.early_stage_approved:
        return [Pool.EARLY_STAGE.value, Pool.GENERAL.value]
    return [Pool.GENERAL.value]


# Parameters: region, start, end (NULL: open), pools (text[] in preference order), soon (bool).
# `busy` is an index-only scan of one region's live allocations overlapping the window (index
# allocation_region_period) plus the few unplaceable GPUs; UNION counts a GPU once however many
# allocations it has in the window. The region is cast to bigint: an int4 literal would not match
# the index's btree_gist int8 operator class and the region would become a filter, not a key.
FREE_NODES_CTE = f"""
busy AS (
    SELECT a.node_id, a.gpu_id
    FROM clusters_allocation a
    WHERE a.region_id = %(region)s::bigint AND a.is_live AND a.period && tstzrange(%(start)s, %(end)s, '[)')
  UNION
    SELECT g.node_id, g.id
    FROM clusters_gpu g
    WHERE (g.health <> 'healthy' OR g.needs_cleanup) AND (g.health <> 'healthy' OR %(soon)s)
),
busy_per_node AS (
    SELECT node_id, count(*) AS busy FROM busy GROUP BY node_id
),
free AS (
    SELECT n.id AS node_id, n.cluster_id, n.pool, n.hostname,
           array_position(%(pools)s::text[], n.pool::text) AS pool_rank,
           {GPUS_PER_NODE} - coalesce(b.busy, 0) AS free
    FROM clusters_node n
    JOIN clusters_cluster c ON c.id = n.cluster_id
    LEFT JOIN busy_per_node b ON b.node_id = n.id
    WHERE c.region_id = %(region)s::bigint AND n.state = 'available' AND n.pool = ANY(%(pools)s::text[])
),
ranked AS (
    SELECT f.*, sum((f.free = {GPUS_PER_NODE})::int) OVER (PARTITION BY f.cluster_id, f.pool) AS cluster_whole
    FROM free f
)
"""


def capacity_params(*, region_id: int, window: Window, pools: list[str]) -> dict[str, object]:
    """The parameters of FREE_NODES_CTE."""
    return {
        "region": region_id,
        "start": window.start,
        "end": window.end,
        "pools": pools,
        "soon": window.overlaps_soon(),
    }


def largest_placeable(*, max_node_free: int, max_whole_nodes: int) -> int:
    """The largest valid lease size that fits, given the freest node and the most whole nodes in a cluster."""
    if max_whole_nodes >= 2:
        return max_whole_nodes * GPUS_PER_NODE
    fitting = [size for size in SINGLE_NODE_SIZES if size <= max_node_free]
    return max(fitting, default=0)


def is_valid_size(gpus: int) -> bool:
    """1, 2, 4 or 8 GPUs on one node; above 8, whole nodes (a multiple of 8)."""
    return gpus in SINGLE_NODE_SIZES or (gpus > GPUS_PER_NODE and gpus % GPUS_PER_NODE == 0)
