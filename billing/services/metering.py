"""Hourly metering: one usage row per lease and clock hour, derived from live allocations."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from core.periods import floor_hour

# One statement computes every lease-hour in the window from the allocation periods (bounds
# truncated to the second, an open period clipped at now), upserts the rows that changed and
# deletes rows that no longer have usage, so re-running any window gives the same rows.
METER_SQL = """
WITH bounds AS (
    SELECT %(start)s::timestamptz AS s,
           LEAST(%(end)s::timestamptz, date_trunc('second', %(now)s::timestamptz)) AS e
),
held AS (
    SELECT a.lease_id, l.organization_id, l.region_id, l.price_per_gpu_hour AS price,
           GREATEST(date_trunc('second', lower(a.period)), b.s) AS lo,
           LEAST(date_trunc('second', COALESCE(upper(a.period), b.e)), b.e) AS hi
    FROM clusters_allocation a
    JOIN clusters_lease l ON l.id = a.lease_id
    CROSS JOIN bounds b
    WHERE a.is_live AND b.e > b.s AND a.period && tstzrange(b.s, b.e, '[)')
),
fresh AS (
    SELECT lease_id, organization_id, region_id, price, h AS hour,
           SUM(EXTRACT(EPOCH FROM LEAST(hi, h + interval '1 hour') - GREATEST(lo, h)))::bigint AS secs
    FROM held
    CROSS JOIN LATERAL generate_series(
        date_trunc('hour', lo), hi - interval '1 microsecond', interval '1 hour'
    ) AS h
    WHERE hi > lo
    GROUP BY lease_id, organization_id, region_id, price, h
),
removed AS (
    DELETE FROM billing_usagehour u
    WHERE u.hour >= %(start)s AND u.hour < %(end)s
      AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.lease_id = u.lease_id AND f.hour = u.hour AND f.secs > 0)
    RETURNING 1
),
upserted AS (
    INSERT INTO billing_usagehour
        (lease_id, organization_id, region_id, hour, gpu_seconds, price_per_gpu_hour, amount, metered_at)
    SELECT lease_id, organization_id, region_id, hour, secs, price, ROUND(secs * price / 3600, 12), %(now)s
    FROM fresh WHERE secs > 0
    ON CONFLICT (lease_id, hour) DO UPDATE
        SET gpu_seconds = EXCLUDED.gpu_seconds, price_per_gpu_hour = EXCLUDED.price_per_gpu_hour,
            amount = EXCLUDED.amount, metered_at = EXCLUDED.metered_at
        WHERE billing_usagehour.gpu_seconds <> EXCLUDED.gpu_seconds
           OR billing_usagehour.price_per_gpu_hour <> EXCLUDED.price_per_gpu_hour
    RETURNING 1
)
SELECT (SELECT count(*) FROM removed), (SELECT count(*) FROM upserted)
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
        cursor.execute(METER_SQL, {"start": start, "end": end, "now": now})
        removed, written = cursor.fetchone()
    return MeterResult(written=written, removed=removed)
