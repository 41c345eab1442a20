"""Telemetry partitions: GPU samples in one table per UTC day, made ahead and dropped whole past retention.

A day's partition is made by the hourly beat task days ahead, and by the poller itself before it
stores a sample in a day that has none (a beat that was down must not cost samples). Dropping a
day is a `DROP TABLE`: no row-by-row DELETE, nothing left for VACUUM.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from clusters.selectors.telemetry import SAMPLES_TABLE, SamplePartition, sample_partitions

log = logging.getLogger(__name__)

# Serializes partition changes between pollers and the beat task: two sessions creating the same
# table at once would otherwise collide in the catalog instead of one finding the other's.
PARTITION_LOCK = 0x76705F7061727473  # "vp_parts"
# A DROP waits for the queries reading the table; while it waits, new ones queue behind it. Giving
# up after this long costs one day's table an hour's delay, never the readers a stall.
DROP_LOCK_TIMEOUT = "2s"


@dataclass
class PartitionReport:
    """What one maintenance pass did."""

    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)


def partition_name(day: date) -> str:
    return f"{SAMPLES_TABLE}_p{day:%Y%m%d}"


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def telemetry_partition_ensure(*, day: date) -> bool:
    """Make the partition of a UTC day unless one already holds it; True when this call made it."""
    lower = _day_start(day)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK])
        if any(partition.holds(lower) for partition in sample_partitions()):
            return False
        cursor.execute(
            f"CREATE TABLE {partition_name(day)} PARTITION OF {SAMPLES_TABLE} FOR VALUES FROM (%s) TO (%s)",
            [lower, lower + timedelta(days=1)],
        )
    return True


def telemetry_partitions_maintain(*, now: datetime | None = None) -> PartitionReport:
    """Make today's and the next TELEMETRY_PARTITIONS_AHEAD_DAYS' partitions; drop those past retention.

    A partition goes once its newest possible sample is older than TELEMETRY_RETENTION_DAYS, so
    samples are kept for at least the retention and at most a day longer.
    """
    now = now or timezone.now()
    report = PartitionReport()
    today = now.astimezone(UTC).date()
    for ahead in range(settings.TELEMETRY_PARTITIONS_AHEAD_DAYS + 1):
        day = today + timedelta(days=ahead)
        if telemetry_partition_ensure(day=day):
            report.created.append(partition_name(day))
    cutoff = now - timedelta(days=settings.TELEMETRY_RETENTION_DAYS)
    for partition in sample_partitions():
        if partition.upper is not None and partition.upper <= cutoff:
            (report.dropped if _drop(partition) else report.busy).append(partition.name)
    return report


def _drop(partition: SamplePartition) -> bool:
    """Drop one partition, unless readers hold the table past DROP_LOCK_TIMEOUT (then next hour)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [DROP_LOCK_TIMEOUT])
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK])
            # Samples written earlier in the caller's transaction leave foreign-key checks pending
            # (the key is deferred), and PostgreSQL refuses to drop a table with checks pending.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(partition.name)}")
    except OperationalError as exc:
        log.warning("telemetry partition %s not dropped this time: %s", partition.name, exc)
        return False
    return True
