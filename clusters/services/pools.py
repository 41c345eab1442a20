"""Pools: staff set the early-stage pool's share of each region; nodes move between the pools as
they become free (no live booking from now on), so no booking ever finds its node in another pool.

Seen first (`pool_share_preview`): how many nodes the share means, how many move at once, how many
wait for their leases to end. Applied by `pool_share_set` and then by every lease sweep of the
region (`pool_shares_apply`, called from the leases_enforce task), which moves nodes as they free.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from accounts.services.audit import audit_record
from clusters.choices import Pool
from clusters.models import Node, PoolShare, Region
from clusters.services.capacity import capacity_freed

# Nodes of one region and pool with no live allocation from now on, in the order they move: into
# the early-stage pool from the highest hostname down, back to general from the lowest up (the
# seed keeps each region's early-stage nodes at the end). Locked as placement locks them, skipping
# any a booking holds; the move itself is a later statement that checks again, so a booking that
# committed before the lock was taken is seen.
FREE_NODES_SQL = """
SELECT n.id
FROM clusters_node n JOIN clusters_cluster c ON c.id = n.cluster_id
WHERE c.region_id = %(region)s AND n.pool = %(pool)s AND NOT EXISTS (
    SELECT 1 FROM clusters_allocation a
    WHERE a.node_id = n.id AND a.is_live AND (upper_inf(a.period) OR upper(a.period) > now())
)
ORDER BY CASE WHEN %(pool)s = 'general' THEN n.hostname END DESC, n.hostname
LIMIT %(limit)s
{lock}
"""

MOVE_SQL = """
UPDATE clusters_node n SET pool = %(to)s
WHERE n.id = ANY(%(ids)s::bigint[]) AND NOT EXISTS (
    SELECT 1 FROM clusters_allocation a
    WHERE a.node_id = n.id AND a.is_live AND (upper_inf(a.period) OR upper(a.period) > now())
)
RETURNING n.hostname
"""


@dataclass(frozen=True)
class SharePreview:
    """What setting a region's early-stage share would do."""

    region: Region
    share: Decimal
    nodes: int
    early_stage_now: int
    early_stage_target: int
    move_now: list[str]

    @property
    def to_move(self) -> int:
        return abs(self.early_stage_target - self.early_stage_now)

    @property
    def waiting(self) -> int:
        """Nodes that move only once their bookings end."""
        return self.to_move - len(self.move_now)

    @property
    def direction(self) -> str:
        return Pool.EARLY_STAGE if self.early_stage_target > self.early_stage_now else Pool.GENERAL


def _counts(region: Region) -> tuple[int, int]:
    nodes = Node.objects.filter(cluster__region=region)
    return nodes.count(), nodes.filter(pool=Pool.EARLY_STAGE).count()


def _target(nodes: int, share: Decimal) -> int:
    return int((nodes * share).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _free_nodes(region: Region, pool: str, limit: int, *, lock: bool) -> list[int]:
    sql = FREE_NODES_SQL.format(lock="FOR NO KEY UPDATE OF n SKIP LOCKED" if lock else "")
    with connection.cursor() as cursor:
        cursor.execute(sql, {"region": region.pk, "pool": pool, "limit": limit})
        return [row[0] for row in cursor.fetchall()]


def pool_share_preview(*, region: Region, share: Decimal) -> SharePreview:
    """What the share would do now: the target, and the nodes that would move at once."""
    nodes, early = _counts(region)
    target = _target(nodes, share)
    source = Pool.GENERAL if target > early else Pool.EARLY_STAGE
    free = _free_nodes(region, source, abs(target - early), lock=False) if target != early else []
    hostnames = list(Node.objects.filter(pk__in=free).order_by("hostname").values_list("hostname", flat=True))
    return SharePreview(region, share, nodes, early, target, hostnames)


@transaction.atomic
def pool_share_set(*, region: Region, share: Decimal, actor: User) -> list[str]:
    """Set the region's early-stage share and move the nodes that are free now; the hostnames moved."""
    before = PoolShare.objects.filter(region=region).values_list("early_stage_share", flat=True).first()
    PoolShare.objects.update_or_create(
        region=region, defaults={"early_stage_share": share, "set_by": actor, "set_at": timezone.now()}
    )
    moved = _apply(region, share)
    audit_record(
        actor=actor,
        action="region.pool_share_set",
        obj=region,
        before={"early_stage_share": str(before) if before is not None else None},
        after={"early_stage_share": str(share), "moved": moved},
    )
    return moved


def pool_shares_apply(*, region: str | None = None) -> list[str]:
    """Move the nodes that became free toward each region's share (all regions, or one by code)."""
    shares = PoolShare.objects.select_related("region")
    if region is not None:
        shares = shares.filter(region__code=region)
    moved: list[str] = []
    for pool_share in shares:
        with transaction.atomic():
            moved += _apply(pool_share.region, pool_share.early_stage_share)
    return moved


def _apply(region: Region, share: Decimal) -> list[str]:
    nodes, early = _counts(region)
    target = _target(nodes, share)
    if target == early:
        return []
    source, to = (Pool.GENERAL, Pool.EARLY_STAGE) if target > early else (Pool.EARLY_STAGE, Pool.GENERAL)
    locked = _free_nodes(region, source, abs(target - early), lock=True)
    if not locked:
        return []
    with connection.cursor() as cursor:
        cursor.execute(MOVE_SQL, {"to": to, "ids": locked})
        moved = sorted(row[0] for row in cursor.fetchall())
    if moved:
        capacity_freed()  # queued requests of the pool that grew may fit now
    return moved
