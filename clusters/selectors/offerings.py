"""Capacity offerings: the earliest windows of N GPUs for H hours that an organization can book now.

What AWS's DescribeCapacityBlockOfferings answers: "which windows of this size and length can I
have, starting when, at what price". The windows obey placement's rules (1-8 GPUs on one node;
above 8, whole nodes of one cluster and one pool), the organization's pools in its order of
preference, the GPUs placement would refuse (unhealthy, awaiting cleanup soon, on nodes out of
service), and its quota (GPUs held at the busiest instant plus GPUs it has queued).

For a lease of one node, a probe first asks whether the earliest windows fit, one node at a time
through the exclusion constraint's index, stopping at the first that does (PROBE_SQL); when it
cannot tell, or for more than one node, one SQL statement finds, per region and pool, the instants
at which such a lease could start (OFFERINGS_SQL: per GPU the gaps between its live allocations,
per node the instants at which enough of its GPUs are free for the whole length, per cluster the
instants with enough whole nodes, merged into intervals); Python then walks those few intervals
against the quota and picks up to OFFERINGS_PER_REGION windows per region that do not overlap
each other. Each region's price is the reserved price for the window's length, as booking takes it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from accounts.models import Organization
from clusters.choices import GPUS_PER_NODE, LIVE_LEASE_STATES, LeaseKind, LeaseRequestState, NodeState
from clusters.models import Node, Region
from clusters.selectors.capacity import Window, availability_for, is_valid_size, pools_for
from clusters.selectors.prices import prices_for, quote_at_price

OFFERINGS_PER_REGION = 3  # the most windows asked for per region
NEAREST = 3
# Merged intervals read per region and pool: enough for OFFERINGS_PER_REGION windows in any but
# the most fragmented calendar (a window needs one interval at most; shorter ones are skipped).
INTERVALS_READ = 200
# The first search pass reaches far enough for the windows wanted if the GPUs are free (their
# lengths, one after the other, and a day), and reads only the allocations of that range; each
# further pass reaches SEARCH_GROWTH times as far and reads only the range the one before did not.
SEARCH_SLACK = timedelta(days=1)
SEARCH_GROWTH = 4

# The instants at which enough nodes of one cluster and pool fit, from node_ok (per node, the
# closed intervals [s, e] of instants at which it can take its share of the lease), merged into
# intervals per region and pool; the first `intervals` of each.
FITS_SQL = """
cluster_events AS (
    SELECT region_id, pool, cluster_id, s AS t, 1 AS d FROM node_ok WHERE %(nodes)s > 1
  UNION ALL
    SELECT region_id, pool, cluster_id, e, -1 FROM node_ok WHERE %(nodes)s > 1
),
cluster_cover AS (
    SELECT region_id, pool, t, sum(d) OVER w AS whole, lead(t) OVER w AS t_next
    FROM cluster_events
    WINDOW w AS (PARTITION BY cluster_id, pool ORDER BY t, d DESC ROWS UNBOUNDED PRECEDING)
),
fits AS (
    -- A lease of one node fits wherever a node fits: the cluster sweep is only for whole nodes.
    SELECT region_id, pool, t AS s, t_next AS e
    FROM cluster_cover WHERE %(nodes)s > 1 AND whole >= %(nodes)s AND t_next IS NOT NULL
  UNION ALL
    SELECT region_id, pool, s, e FROM node_ok WHERE %(nodes)s = 1
),
marked AS (
    SELECT region_id, pool, s, e,
           CASE WHEN s <= max(e) OVER (PARTITION BY region_id, pool ORDER BY s, e
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                THEN 0 ELSE 1 END AS opens
    FROM fits
),
merged AS (
    SELECT region_id, pool, min(s) AS s, max(e) AS e
    FROM (SELECT *, sum(opens) OVER (PARTITION BY region_id, pool ORDER BY s, e) AS island FROM marked) m
    GROUP BY region_id, pool, island
)
SELECT region_id, pool, s, e
FROM (SELECT *, row_number() OVER (PARTITION BY region_id, pool ORDER BY s) AS k FROM merged) r
WHERE k <= %(intervals)s
ORDER BY region_id, pool, s
"""

# Parameters: regions (bigint[]), pools (text[]), x0 (earliest start), latest (latest start),
# horizon (latest + length: allocations starting later cannot matter), length (interval), soon
# (until when GPUs awaiting cleanup are not placed), per_node (GPUs needed on one node: the size,
# or 8 above 8), nodes (nodes needed in one cluster: 1, or size / 8), intervals (rows per pool).
# As in placement (FREE_NODES_CTE), a node has 8 GPUs less its few unplaceable ones (partial index
# gpu_unplaceable), so the GPU table is not scanned; only the GPUs with something booked in the
# range are looked at one by one, and a node's other GPUs are free throughout ("spare").
OFFERINGS_SQL = (
    """
WITH nodes AS (
    SELECT n.id AS node_id, n.cluster_id, c.region_id, n.pool
    FROM clusters_node n
    JOIN clusters_cluster c ON c.id = n.cluster_id
    WHERE c.region_id = ANY(%(regions)s::bigint[]) AND n.state = 'available'
      AND n.pool = ANY(%(pools)s::text[])
),
unplaceable AS (
    SELECT g.id AS gpu_id, g.node_id, g.health <> 'healthy' AS failed
    FROM clusters_gpu g JOIN nodes USING (node_id)
    WHERE g.health <> 'healthy' OR g.needs_cleanup
),
busy AS (
    -- One index-only scan of allocation_region_period per region.
    SELECT a.gpu_id, a.node_id, lower(a.period) AS lo, coalesce(upper(a.period), 'infinity') AS hi
    FROM unnest(%(regions)s::bigint[]) AS r(id)
    CROSS JOIN LATERAL (
        SELECT gpu_id, node_id, period FROM clusters_allocation
        WHERE region_id = r.id AND is_live AND period && tstzrange(%(x0)s, %(horizon)s, '[)')
        OFFSET 0
    ) a
    JOIN nodes USING (node_id)
    WHERE NOT EXISTS (SELECT 1 FROM unplaceable u WHERE u.gpu_id = a.gpu_id AND u.failed)
  UNION ALL
    SELECT gpu_id, node_id, '-infinity', %(soon)s FROM unplaceable WHERE NOT failed AND %(soon)s > %(x0)s
),
spare AS (
    -- Per node, the healthy GPUs with nothing booked in the range.
    SELECT n.node_id, n.region_id, n.pool, n.cluster_id,
           8 - coalesce(b.gpus, 0) - coalesce(f.gpus, 0) AS gpus, b.node_id IS NOT NULL AS touched
    FROM nodes n
    LEFT JOIN (SELECT node_id, count(DISTINCT gpu_id) AS gpus FROM busy GROUP BY node_id) b USING (node_id)
    LEFT JOIN (SELECT node_id, count(*) AS gpus FROM unplaceable WHERE failed GROUP BY node_id) f
        USING (node_id)
),
ordered AS (
    SELECT gpu_id, node_id, lo, hi,
           max(hi) OVER (PARTITION BY gpu_id ORDER BY lo
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_hi
    FROM busy
),
gaps AS (
    SELECT node_id, coalesce(prev_hi, '-infinity') AS gs, lo AS ge FROM ordered
  UNION ALL
    SELECT node_id, max(hi), 'infinity' FROM ordered GROUP BY gpu_id, node_id
),
starts AS (
    -- The instants [s, e] at which a lease of `length` could start on one booked GPU.
    SELECT node_id, greatest(gs, %(x0)s) AS s, least(ge - %(length)s, %(latest)s) AS e
    FROM gaps
    WHERE greatest(gs, %(x0)s) <= least(ge - %(length)s, %(latest)s)
),
node_events AS (
    SELECT node_id, s AS t, 1 AS d FROM starts
  UNION ALL
    SELECT node_id, e, -1 FROM starts
),
node_cover AS (
    -- At one instant a start counts before an end: both intervals are closed.
    SELECT node_id, t, sum(d) OVER w AS free, lead(t) OVER w AS t_next
    FROM node_events
    WINDOW w AS (PARTITION BY node_id ORDER BY t, d DESC ROWS UNBOUNDED PRECEDING)
),
node_ok AS (
    SELECT p.region_id, p.pool, p.cluster_id, c.t AS s, c.t_next AS e
    FROM node_cover c JOIN spare p USING (node_id)
    WHERE p.gpus < %(per_node)s AND p.gpus + c.free >= %(per_node)s AND c.t_next IS NOT NULL
  UNION ALL
    SELECT region_id, pool, cluster_id, %(x0)s, %(latest)s FROM spare WHERE gpus >= %(per_node)s
),
"""
    + FITS_SQL
)

# Parameters: as OFFERINGS_SQL. When a lease takes whole nodes (8 GPUs and above), a node fits
# exactly when none of its GPUs is busy, so the sweep is per node, not per GPU: its live
# allocations are read once per distinct period (a lease's GPUs share one), their union's gaps are
# the node's free intervals, and no per-GPU count is needed. Answers what OFFERINGS_SQL answers
# for per_node = 8 (tests/clusters/test_offerings_properties.py compares the two), in a fraction
# of its time: the per-GPU sort and sweep was most of an offerings query.
WHOLE_NODE_OFFERINGS_SQL = (
    """
WITH unplaceable AS (
    SELECT g.node_id, g.health <> 'healthy' AS failed
    FROM clusters_gpu g
    WHERE g.health <> 'healthy' OR g.needs_cleanup
),
nodes AS (
    -- A node with a failed GPU never has 8 to give.
    SELECT n.id AS node_id, n.cluster_id, c.region_id, n.pool
    FROM clusters_node n
    JOIN clusters_cluster c ON c.id = n.cluster_id
    WHERE c.region_id = ANY(%(regions)s::bigint[]) AND n.state = 'available'
      AND n.pool = ANY(%(pools)s::text[])
      AND NOT EXISTS (SELECT 1 FROM unplaceable u WHERE u.node_id = n.id AND u.failed)
),
busy AS (
    SELECT DISTINCT a.node_id, lower(a.period) AS lo, coalesce(upper(a.period), 'infinity') AS hi
    FROM unnest(%(regions)s::bigint[]) AS r(id)
    CROSS JOIN LATERAL (
        SELECT node_id, period FROM clusters_allocation
        WHERE region_id = r.id AND is_live AND period && tstzrange(%(x0)s, %(horizon)s, '[)')
        OFFSET 0
    ) a
  UNION ALL
    SELECT node_id, '-infinity', %(soon)s FROM unplaceable WHERE NOT failed AND %(soon)s > %(x0)s
),
ordered AS (
    SELECT b.node_id, b.lo, b.hi,
           max(b.hi) OVER (PARTITION BY b.node_id ORDER BY b.lo
                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_hi
    FROM busy b JOIN nodes USING (node_id)
),
gaps AS (
    SELECT node_id, coalesce(prev_hi, '-infinity') AS gs, lo AS ge FROM ordered
  UNION ALL
    SELECT node_id, max(hi), 'infinity' FROM ordered GROUP BY node_id
),
node_ok AS (
    SELECT n.region_id, n.pool, n.cluster_id, greatest(g.gs, %(x0)s) AS s,
           least(g.ge - %(length)s, %(latest)s) AS e
    FROM gaps g JOIN nodes n USING (node_id)
    WHERE greatest(g.gs, %(x0)s) <= least(g.ge - %(length)s, %(latest)s)
  UNION ALL
    SELECT region_id, pool, cluster_id, %(x0)s, %(latest)s
    FROM nodes n WHERE NOT EXISTS (SELECT 1 FROM busy b WHERE b.node_id = n.node_id)
),
"""
    + FITS_SQL
)

# Parameters: as OFFERINGS_SQL, count (windows) and probe (nodes looked at). Whether a lease of one
# node (per_node GPUs) fits in each of `count` windows of `length` one after the other from x0, per
# region and pool, looking at no more than `probe` of its nodes: a node is checked GPU by GPU
# through the exclusion constraint's index (gpu, period), and the first that fits ends the search,
# so on a fleet with room this costs a few index probes, not a scan of every allocation in the
# range. `known` says whether the probe saw every node of the pool (then "does not fit" is known
# too); otherwise the sweep above answers.
PROBE_SQL = """
WITH asked AS (
    SELECT w.k, %(x0)s + w.k * %(length)s AS s, r.id AS region_id, p.pool
    FROM generate_series(0, %(count)s - 1) AS w(k)
    CROSS JOIN unnest(%(regions)s::bigint[]) AS r(id)
    CROSS JOIN unnest(%(pools)s::text[]) AS p(pool)
)
SELECT a.k, a.region_id, a.pool,
       EXISTS (
           SELECT 1 FROM (
               SELECT n.id FROM clusters_node n JOIN clusters_cluster c ON c.id = n.cluster_id
               WHERE c.region_id = a.region_id AND n.state = 'available' AND n.pool = a.pool
               LIMIT %(probe)s
           ) n
           WHERE (
               SELECT count(*) FROM clusters_gpu g
               WHERE g.node_id = n.id AND g.health = 'healthy' AND NOT (g.needs_cleanup AND a.s < %(soon)s)
                 AND NOT EXISTS (
                     SELECT 1 FROM clusters_allocation l
                     WHERE l.gpu_id = g.id AND l.is_live
                       AND l.period && tstzrange(a.s, a.s + %(length)s, '[)')
                 )
           ) >= %(per_node)s
       ) AS fits,
       (
           SELECT count(*) FROM (
               SELECT 1 FROM clusters_node n JOIN clusters_cluster c ON c.id = n.cluster_id
               WHERE c.region_id = a.region_id AND n.state = 'available' AND n.pool = a.pool
               LIMIT %(probe)s + 1
           ) m
       ) <= %(probe)s AS known
FROM asked a
"""
# Nodes the probe looks at per window, region and pool: each costs up to 8 index probes (~0.1 ms).
PROBE_NODES = 32

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class Offering:
    """A window of `gpus` GPUs in a region that can be booked now, and what it costs."""

    region: Region
    pool: str
    start: datetime
    end: datetime
    gpus: int
    price_per_gpu_hour: Decimal
    total_price: Decimal
    currency: str

    def as_json(self) -> dict[str, object]:
        """What the API shows of an offering (also inside a 409 `no_capacity`)."""
        return {
            "region": self.region.code,
            "region_name": self.region.name,
            "pool": self.pool,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "gpus": self.gpus,
            "price_per_gpu_hour": str(self.price_per_gpu_hour),
            "total_price": str(self.total_price),
            "currency": self.currency,
        }


def ceil_to_step(moment: datetime) -> datetime:
    """The first instant on booking's time step (whole minutes) at or after `moment`."""
    step = settings.BOOKING_TIME_STEP
    rest = (moment - datetime.min.replace(tzinfo=moment.tzinfo)) % step
    return moment if not rest else moment + (step - rest)


def capacity_offerings(
    *,
    organization: Organization,
    gpus: int,
    length: timedelta,
    regions: list[Region] | None = None,
    earliest_start: datetime | None = None,
    latest_start: datetime | None = None,
    per_region: int = 1,
) -> list[Offering]:
    """Up to `per_region` non-overlapping windows per region, earliest first, sorted by start.

    The earliest start defaults to now and is never in the past; the latest to the furthest a
    booking may start (BOOKING_MAX_DAYS_AHEAD), and never later.
    """
    now = timezone.now()
    x0 = ceil_to_step(max(earliest_start or now, now))
    latest = min(latest_start or now + settings.BOOKING_MAX_AHEAD, now + settings.BOOKING_MAX_AHEAD)
    pools = pools_for(organization)
    regions = regions if regions is not None else list(Region.objects.order_by("code"))
    if not is_valid_size(gpus) or latest < x0 or not regions:
        return []
    blocked = _quota_blocked(organization, gpus, length, x0)
    count = min(per_region, 1 + (latest - x0) // length)
    # Above one node, a probe of whole clusters would cost about what the per-node sweep does.
    found = (
        {region.pk: [] for region in regions}
        if gpus > GPUS_PER_NODE
        else _known_to_fit_from_x0(pools, gpus, length, regions, x0, count, blocked, now)
    )
    # The sweep searches only the regions the probe did not answer, and of them only those that can
    # ever hold the size (a region where the probe found room obviously can).
    searched = _big_enough([r for r in regions if len(found[r.pk]) < per_region], gpus, pools)
    resume = {region.pk: x0 + len(found[region.pk]) * length for region in searched}
    reach = per_region * length + SEARCH_SLACK
    while any(len(found[r.pk]) < per_region for r in searched):
        high = min(latest, x0 + reach)
        wanting = [r for r in searched if len(found[r.pk]) < per_region and resume[r.pk] <= high]
        if wanting:
            low = min(resume[r.pk] for r in wanting)
            intervals = _fit_intervals(pools, gpus, length, wanting, low, high, now)
            for region in wanting:
                starts = _starts(
                    intervals.get(region.pk, {}), pools, blocked, resume[region.pk], high, length
                )
                found[region.pk] += starts[: per_region - len(found[region.pk])]
                last = found[region.pk][-1][0] + length if found[region.pk] else resume[region.pk]
                resume[region.pk] = max(last, high)
        if high >= latest:
            break
        reach *= SEARCH_GROWTH
    # Priced as booking prices them: the reserved price in force now, by the lease's length (term tiers).
    offering = [region for region in regions if found[region.pk]]
    prices = prices_for(kind=LeaseKind.RESERVED, regions=offering, at=now, duration=length)
    offerings = [
        o
        for region in offering
        for o in _priced(region, gpus, length, found[region.pk], prices.get(region.pk))
    ]
    return sorted(offerings, key=lambda o: (o.start, o.region.code))


def _big_enough(regions: list[Region], gpus: int, pools: list[str]) -> list[Region]:
    """The regions with a cluster of enough nodes in service, in one pool, for `gpus` ever to fit.

    Without it, a size no cluster can hold would be searched for up to BOOKING_MAX_DAYS_AHEAD.
    """
    if not regions:
        return []
    nodes = max(1, gpus // GPUS_PER_NODE)
    largest = (
        Node.objects.filter(cluster__region__in=regions, state=NodeState.AVAILABLE, pool__in=pools)
        .values("cluster__region_id", "cluster_id", "pool")
        .annotate(nodes=Count("pk"))
        .filter(nodes__gte=nodes)
        .values_list("cluster__region_id", flat=True)
    )
    kept = set(largest)
    return [region for region in regions if region.pk in kept]


def _known_to_fit_from_x0(
    pools: list[str],
    gpus: int,
    length: timedelta,
    regions: list[Region],
    x0: datetime,
    count: int,
    blocked: list[Interval],
    now: datetime,
) -> dict[int, list[tuple[datetime, str]]]:
    """Per region, the windows x0, x0 + length, ... that the probe found to fit (with the quota), up to
    the first it did not; the sweep searches on from there."""
    params = {**_params(pools, gpus, length, regions, x0, x0, now), "count": count, "probe": PROBE_NODES}
    probed: dict[tuple[int, int], dict[str, tuple[bool, bool]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(PROBE_SQL, params)
        for k, region_id, pool, fits, known in cursor.fetchall():
            probed.setdefault((region_id, k), {})[pool] = (fits, known)
    found: dict[int, list[tuple[datetime, str]]] = {}
    for region in regions:
        found[region.pk] = []
        for k in range(count):
            start = x0 + k * length
            pool = _first_pool_that_fits(pools, probed.get((region.pk, k), {}))
            if pool is None or _quota_allows_from(blocked, start) != start:
                break
            found[region.pk].append((start, pool))
    return found


def _first_pool_that_fits(pools: list[str], probed: dict[str, tuple[bool, bool]]) -> str | None:
    """The pool placement would use (the first that fits), if the probe knows it; None: not known."""
    for pool in pools:
        fits, known = probed.get(pool, (False, False))
        if fits:
            return pool
        if not known:
            return None  # this pool may fit beyond the nodes probed: placement would take it first
    return None


def _params(
    pools: list[str],
    gpus: int,
    length: timedelta,
    regions: list[Region],
    x0: datetime,
    latest: datetime,
    now: datetime,
) -> dict[str, Any]:
    return {
        "regions": [region.pk for region in regions],
        "pools": pools,
        "x0": x0,
        "latest": latest,
        "horizon": latest + length,
        "length": length,
        "soon": now + settings.BOOKING_CLEANUP_HORIZON,
        "per_node": min(gpus, GPUS_PER_NODE),
        "nodes": max(1, gpus // GPUS_PER_NODE),
        "intervals": INTERVALS_READ,
    }


def _fit_intervals(
    pools: list[str],
    gpus: int,
    length: timedelta,
    regions: list[Region],
    x0: datetime,
    latest: datetime,
    now: datetime,
) -> dict[int, dict[str, list[Interval]]]:
    """Per region and pool, the merged intervals of instants in [x0, latest] when `gpus` GPUs can start."""
    params = _params(pools, gpus, length, regions, x0, latest, now)
    sql = WHOLE_NODE_OFFERINGS_SQL if gpus >= GPUS_PER_NODE else OFFERINGS_SQL
    found: dict[int, dict[str, list[Interval]]] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        # Its row estimates are far off (window functions over unions), which would make PostgreSQL
        # spend most of the time compiling it with JIT: measured ~1 s of a 1.3 s query.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        for region_id, pool, start, end in cursor.fetchall():
            found.setdefault(region_id, {}).setdefault(pool, []).append((start, end))
    return found


# Parameters: organization, x0, states (live lease states). What counts against the organization's
# quota, in one round trip: first (NULL, NULL, GPUs of its queued requests), then (start, end, gpus)
# of each live lease not over by x0.
QUOTA_SQL = """
SELECT 0 AS part, NULL::timestamptz, NULL::timestamptz, coalesce(sum(r.gpus), 0)::integer
FROM clusters_leaserequest r WHERE r.organization_id = %(organization)s AND r.state = %(queued)s
UNION ALL
SELECT 1, l.start, l."end", l.gpus FROM clusters_lease l
WHERE l.organization_id = %(organization)s AND l.state = ANY(%(states)s)
  AND (l."end" IS NULL OR l."end" > %(x0)s)
ORDER BY part
"""


def _quota_blocked(organization: Organization, gpus: int, length: timedelta, x0: datetime) -> list[Interval]:
    """The open intervals of start instants the quota forbids, sorted: (-inf, +inf) if it always does.

    The GPUs of the organization's queued requests count against its quota throughout.
    Where the organization already holds more than `quota - gpus` GPUs over [b, c), a window of
    `length` may not start in (b - length, c).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            QUOTA_SQL,
            {
                "organization": organization.pk,
                "x0": x0,
                "states": list(LIVE_LEASE_STATES),
                "queued": LeaseRequestState.QUEUED,
            },
        )
        rows = [row[1:] for row in cursor.fetchall()]
    allowed = organization.gpu_quota - gpus - rows[0][2]
    if allowed < 0:
        return [(datetime.min.replace(tzinfo=x0.tzinfo), datetime.max.replace(tzinfo=x0.tzinfo))]
    events: list[tuple[datetime, int]] = []
    for start, end, held in rows[1:]:
        events.append((start, held))
        events.append((end or datetime.max.replace(tzinfo=x0.tzinfo), -held))
    blocked: list[Interval] = []
    held = 0
    over_since: datetime | None = None
    # Ends before starts at one instant: periods are [start, end).
    for at, delta in sorted(events, key=lambda e: (e[0], e[1])):
        held += delta
        if held > allowed and over_since is None:
            over_since = at
        elif held <= allowed and over_since is not None:
            blocked.append((over_since - length, at))
            over_since = None
    return blocked


def _starts(
    by_pool: dict[str, list[Interval]],
    pools: list[str],
    blocked: list[Interval],
    at: datetime,
    latest: datetime,
    length: timedelta,
) -> list[tuple[datetime, str]]:
    """Up to OFFERINGS_PER_REGION start instants from `at` on, each at least `length` after the one before."""
    found: list[tuple[datetime, str]] = []
    while at <= latest and len(found) < OFFERINGS_PER_REGION:
        start = _earliest(by_pool, pools, blocked, at, latest)
        if start is None:
            break
        found.append(start)
        at = start[0] + length
    return found


def _earliest(
    by_pool: dict[str, list[Interval]],
    pools: list[str],
    blocked: list[Interval],
    at: datetime,
    latest: datetime,
) -> tuple[datetime, str] | None:
    """The first instant at or after `at` that capacity and quota both allow, and its pool."""
    while at <= latest:
        fits = _first_fit(by_pool, pools, at)
        if fits is None or fits[0] > latest:
            return None
        allowed = _quota_allows_from(blocked, fits[0])
        if allowed is None:
            return None
        if allowed == fits[0]:
            return fits
        at = allowed
    return None


def _first_fit(
    by_pool: dict[str, list[Interval]], pools: list[str], at: datetime
) -> tuple[datetime, str] | None:
    """The earliest step-aligned instant at or after `at` in some pool's intervals; placement's pool then."""
    earliest: datetime | None = None
    for pool in pools:
        for start, end in by_pool.get(pool, []):
            candidate = ceil_to_step(max(start, at))
            if candidate <= end:
                earliest = candidate if earliest is None else min(earliest, candidate)
                break
    if earliest is None:
        return None
    # Placement tries the organization's pools in order: the first one that fits then takes it.
    pool = next(p for p in pools if any(s <= earliest <= e for s, e in by_pool.get(p, [])))
    return earliest, pool


def _quota_allows_from(blocked: list[Interval], at: datetime) -> datetime | None:
    """The first step-aligned instant at or after `at` outside every blocked interval; None: never."""
    for low, high in blocked:
        if low < at < high:
            if high.year == datetime.max.year:
                return None
            at = ceil_to_step(high)
    return at


def _priced(
    region: Region, gpus: int, length: timedelta, starts: list[tuple[datetime, str]], price: Decimal | None
) -> list[Offering]:
    """The offerings at these starts at the region's price (none where there is no price)."""
    if price is None:
        return []
    offerings = []
    for start, pool in starts:
        found = quote_at_price(price=price, gpus=gpus, start=start, end=start + length)
        assert found.total is not None
        offerings.append(
            Offering(
                region=region,
                pool=pool,
                start=start,
                end=start + length,
                gpus=gpus,
                price_per_gpu_hour=found.price_per_gpu_hour,
                total_price=found.total,
                currency=found.currency,
            )
        )
    return offerings


@dataclass(frozen=True)
class Alternatives:
    """What a refused booking can do instead: the nearest offerings, and where the size is free now."""

    offerings: list[Offering]
    regions_free_now: list[Region]


def alternatives_for(*, organization: Organization, gpus: int, window: Window) -> Alternatives:
    """The NEAREST offerings from the window's start on, for its length (for an on-demand lease, the
    shortest reserved one), each region's earliest among them; and the regions where `gpus` fit
    from now on."""
    length = window.end - window.start if window.end is not None else settings.BOOKING_MIN_DURATION
    regions = list(Region.objects.order_by("code"))
    offerings = capacity_offerings(
        organization=organization, gpus=gpus, length=length, regions=regions, earliest_start=window.start
    )
    if len(offerings) < NEAREST:
        # Fewer regions than NEAREST offer one: take later windows of those that do.
        offering_regions = [r for r in regions if any(o.region.pk == r.pk for o in offerings)]
        offerings = capacity_offerings(
            organization=organization,
            gpus=gpus,
            length=length,
            regions=offering_regions,
            earliest_start=window.start,
            per_region=NEAREST,
        )
    now = timezone.now()
    now_window = Window(start=now, end=None if window.end is None else now + length)
    free_now = [
        region
        for region in regions
        if availability_for(region=region, window=now_window, gpus=gpus, organization=organization).can_place
    ]
    return Alternatives(offerings=_nearest(offerings), regions_free_now=free_now)


def _nearest(offerings: list[Offering]) -> list[Offering]:
    """The NEAREST offerings by start, each region's earliest first so that every region is shown."""
    firsts: dict[int, Offering] = {}
    for offering in offerings:
        firsts.setdefault(offering.region.pk, offering)
    picked = list(firsts.values())[:NEAREST]
    picked += [o for o in offerings if o not in picked][: NEAREST - len(picked)]
    return sorted(picked, key=lambda o: (o.start, o.region.code))
