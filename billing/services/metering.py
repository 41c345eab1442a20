"""Hourly metering: one usage row per lease and clock hour, derived from live allocations."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from core.periods import floor_hour

METER_LOCK = 8_241_002  # pg_advisory_xact_lock key of metering runs (usage debits take 8_241_001)

# A month close computes half a million rows: enough memory to group and join them without
# spilling to disk, for this run only (runs take turns on METER_LOCK).
METER_WORK_MEM = "128MB"

# The first statement computes every lease-hour in the window from the allocation periods (bounds
# truncated to the second, an open period clipped at now) into a temporary table; the next three
# delete the rows that no longer have usage, update those that changed and insert the new ones, so
# re-running any window gives the same rows. Separate statements, not data-modifying CTEs of one:
# a CTE's scan of the usage table restarted while another CTE of the statement fills it was
# quadratic. The allocations of a lease usually share one period: they are counted per distinct
# period before the hours are expanded. Runs take turns on METER_LOCK, so a row missing from the
# table is missing for real: a plain INSERT (no ON CONFLICT, whose speculative insertion cost a
# close of 500,000 new rows a third more), in (lease, hour) order, the order of the unique key.
FRESH_SQL = """
CREATE TEMPORARY TABLE usage_fresh ON COMMIT DROP AS
WITH bounds AS (
    SELECT %(start)s::timestamptz AS s,
           LEAST(%(end)s::timestamptz, date_trunc('second', %(now)s::timestamptz)) AS e
),
held AS (
    SELECT a.lease_id,
           GREATEST(date_trunc('second', lower(a.period)), b.s) AS lo,
           LEAST(date_trunc('second', COALESCE(upper(a.period), b.e)), b.e) AS hi
    FROM clusters_allocation a
    CROSS JOIN bounds b
    WHERE a.is_live AND b.e > b.s AND a.period && tstzrange(b.s, b.e, '[)')
),
periods AS (
    SELECT lease_id, lo, hi, count(*) AS gpus FROM held WHERE hi > lo GROUP BY lease_id, lo, hi
),
seconds AS (
    SELECT lease_id, h AS hour,
           SUM(gpus * EXTRACT(EPOCH FROM LEAST(hi, h + interval '1 hour') - GREATEST(lo, h)))::bigint AS secs
    FROM periods
    CROSS JOIN LATERAL generate_series(
        date_trunc('hour', lo), hi - interval '1 microsecond', interval '1 hour'
    ) AS h
    GROUP BY lease_id, h
)
SELECT s.lease_id, l.organization_id, l.region_id, l.price_per_gpu_hour AS price, s.hour, s.secs
FROM seconds s JOIN clusters_lease l ON l.id = s.lease_id
WHERE s.secs > 0
"""

REMOVE_SQL = """
DELETE FROM billing_usagehour u
WHERE u.hour >= %(start)s AND u.hour < %(end)s
  AND NOT EXISTS (SELECT 1 FROM usage_fresh f WHERE f.lease_id = u.lease_id AND f.hour = u.hour)
"""

CHANGE_SQL = """
UPDATE billing_usagehour u
SET gpu_seconds = f.secs, price_per_gpu_hour = f.price, amount = ROUND(f.secs * f.price / 3600, 12),
    metered_at = %(now)s
FROM usage_fresh f
WHERE u.lease_id = f.lease_id AND u.hour = f.hour
  AND (u.gpu_seconds <> f.secs OR u.price_per_gpu_hour <> f.price)
"""

ADD_SQL = """
INSERT INTO billing_usagehour
    (lease_id, organization_id, region_id, hour, gpu_seconds, price_per_gpu_hour, amount, metered_at)
SELECT lease_id, organization_id, region_id, hour, secs, price, ROUND(secs * price / 3600, 12), %(now)s
FROM usage_fresh f
WHERE NOT EXISTS (SELECT 1 FROM billing_usagehour u WHERE u.lease_id = f.lease_id AND u.hour = f.hour)
ORDER BY lease_id, hour
"""


@dataclass(frozen=True)
class MeterResult:
    """How many usage rows one metering run wrote and removed (zero and zero on a re-run)."""

    written: int
    removed: int


@transaction.atomic
def usage_meter(*, start: datetime, end: datetime, now: datetime | None = None) -> MeterResult:
    """Materialize the usage rows of every clock hour in [start, end); idempotent."""
    start, end = floor_hour(start), floor_hour(end + timedelta(hours=1) - timedelta(microseconds=1))
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [METER_LOCK])
        cursor.execute(
            "SELECT current_setting('work_mem'), set_config('work_mem', %s, true)", [METER_WORK_MEM]
        )
        [(work_mem, _)] = cursor.fetchall()
        params = {"start": start, "end": end, "now": now}
        cursor.execute(FRESH_SQL, params)
        cursor.execute("ANALYZE usage_fresh")  # the three statements below are planned on its size
        counts = []
        for statement in (REMOVE_SQL, CHANGE_SQL, ADD_SQL):
            cursor.execute(statement, params)
            counts.append(cursor.rowcount)
        cursor.execute(
            "DROP TABLE usage_fresh"
        )  # now: another run in the same outer transaction makes it again
        cursor.execute("SELECT set_config('work_mem', %s, true)", [work_mem])
    removed, changed, added = counts
    return MeterResult(written=changed + added, removed=removed)
