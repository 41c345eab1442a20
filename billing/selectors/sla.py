"""SLA credits: the GPU-time a lease held on a node while that node was unhealthy."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection

from core.money import amount_for

# Every live allocation of the period paired with every health event on its node that overlaps
# it; bounds truncated to the second like metering, open ends clipped at the period's end.
SLA_SQL = """
SELECT a.id, l.organization_id, a.lease_id, l.region_id, l.price_per_gpu_hour, e.id, e.public_id,
       GREATEST(date_trunc('second', lower(a.period)), %(s)s) AS a_lo,
       LEAST(date_trunc('second', COALESCE(upper(a.period), %(e)s)), %(e)s) AS a_hi,
       date_trunc('second', e.started_at) AS e_lo,
       LEAST(date_trunc('second', COALESCE(e.ended_at, %(e)s)), %(e)s) AS e_hi
FROM clusters_allocation a
JOIN clusters_lease l ON l.id = a.lease_id
JOIN clusters_healthevent e ON e.node_id = a.node_id
WHERE a.is_live AND a.period && tstzrange(%(s)s, %(e)s, '[)')
  AND e.started_at < %(e)s AND (e.ended_at IS NULL OR e.ended_at > %(s)s)
  AND a.period && tstzrange(e.started_at, e.ended_at, '[)')
ORDER BY a.id, e.started_at, e.id
"""


@dataclass(frozen=True)
class SlaCredit:
    """The credit a lease earns for one health event: GPU-seconds lost and their price."""

    organization_id: int
    lease_id: int
    region_id: int
    health_event_id: int
    health_event_public_id: str
    gpu_seconds: int
    price: Decimal

    @property
    def amount(self) -> Decimal:
        return amount_for(self.gpu_seconds * self.price)


def sla_credits_between(start: datetime, end: datetime) -> list[SlaCredit]:
    """Each (lease, health event) credit in [start, end); overlapping events never count twice."""
    seconds: dict[tuple, int] = defaultdict(int)
    covered: dict[int, datetime] = {}
    with connection.cursor() as cursor:
        cursor.execute(SLA_SQL, {"s": start, "e": end})
        for (
            alloc,
            org,
            lease,
            region,
            price,
            event,
            event_public_id,
            a_lo,
            a_hi,
            e_lo,
            e_hi,
        ) in cursor.fetchall():
            # An allocation's time already credited to an earlier event is not credited again.
            lo = max(e_lo, a_lo, covered.get(alloc, a_lo))
            hi = min(e_hi, a_hi)
            if hi > lo:
                seconds[(org, lease, region, event, event_public_id, price)] += int((hi - lo).total_seconds())
                covered[alloc] = hi
    return [
        SlaCredit(org, lease, region, event, str(public_id), secs, price)
        for (org, lease, region, event, public_id, price), secs in sorted(
            seconds.items(), key=lambda kv: kv[0][:4]
        )
    ]
