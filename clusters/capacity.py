"""Free GPUs per node for a window: the SQL shared by availability and placement.

The busy GPUs come from one range scan of the GiST index on `Allocation.period` (allocations
overlapping the window) plus the few unplaceable GPUs (partial index `gpu_unplaceable`);
each eligible node's free count is its eight GPUs minus those. No per-GPU anti-join.
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
FREE_NODES_CTE = f"""
busy AS (
    SELECT a.gpu_id, a.node_id
    FROM clusters_allocation a
    WHERE a.is_live AND a.period && tstzrange(%(start)s, %(end)s, '[)')
  UNION
    SELECT g.id, g.node_id
    FROM clusters_gpu g
    WHERE (g.health <> 'healthy' OR g.needs_cleanup) AND (g.health <> 'healthy' OR %(soon)s)
),
free AS (
    SELECT n.id AS node_id, n.cluster_id, n.pool, n.hostname,
           array_position(%(pools)s::text[], n.pool::text) AS pool_rank,
           {GPUS_PER_NODE} - count(b.gpu_id) AS free
    FROM clusters_node n
    JOIN clusters_cluster c ON c.id = n.cluster_id
    LEFT JOIN busy b ON b.node_id = n.id
    WHERE c.region_id = %(region)s AND n.state = 'available' AND n.pool = ANY(%(pools)s::text[])
    GROUP BY n.id
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
