"""GPU samples live in one partition per UTC day: made ahead, dropped whole past retention, and a
lease's charts read only the partitions of its days; the migration keeps samples stored before it."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Organization, User
from clusters.choices import LeaseKind, LeaseState
from clusters.models import GPU, GpuSample, LeaseTelemetryHour
from clusters.selectors.telemetry import lease_telemetry, sample_partitions
from clusters.services.partitions import telemetry_partition_ensure, telemetry_partitions_maintain
from clusters.services.telemetry import fleet_poll
from tests.clusters.helpers import Fleet, gpus_of, lease_on
from tests.races import errors_of, race

BEFORE_PARTITIONS = ("clusters", "0008_idempotency_key_created_at_index")
NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def partition_names() -> list[str]:
    return [partition.name for partition in sample_partitions()]


def march_partitions() -> list[str]:
    """The partitions of this module's days (tests with real workers may leave today's behind)."""
    return [name for name in partition_names() if name.startswith("clusters_gpusample_p202603")]


def test_a_sweep_stores_its_samples_in_the_partition_of_their_day(fleet_of: Callable[..., Fleet]) -> None:
    fleet_of(1)

    fleet_poll(now=NOON)
    fleet_poll(now=NOON + timedelta(days=1))

    assert march_partitions() == ["clusters_gpusample_p20260310", "clusters_gpusample_p20260311"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM clusters_gpusample_p20260311")
        assert cursor.fetchone() == (8,)
    assert GpuSample.objects.filter(at=NOON).count() == 8


def test_maintenance_makes_the_coming_days_and_drops_whole_days_past_retention(
    fleet_of: Callable[..., Fleet], settings
) -> None:
    settings.TELEMETRY_RETENTION_DAYS = 7
    settings.TELEMETRY_PARTITIONS_AHEAD_DAYS = 2
    fleet_of(1)
    fleet_poll(now=NOON - timedelta(days=8))
    fleet_poll(now=NOON - timedelta(days=6, hours=23))

    report = telemetry_partitions_maintain(now=NOON)

    assert report.dropped == ["clusters_gpusample_p20260302"]
    assert report.created == [f"clusters_gpusample_p202603{day}" for day in (10, 11, 12)]
    assert march_partitions() == [f"clusters_gpusample_p202603{day}" for day in ("03", 10, 11, 12)]
    assert (
        GpuSample.objects.count() == 8
        and GpuSample.objects.filter(at__lt=NOON - timedelta(days=7)).count() == 0
    )
    again = telemetry_partitions_maintain(now=NOON)
    assert (again.created, again.dropped, again.busy) == ([], [], [])


def test_a_day_is_dropped_only_once_its_last_sample_is_past_retention(
    fleet_of: Callable[..., Fleet], settings
) -> None:
    settings.TELEMETRY_RETENTION_DAYS = 7
    fleet_of(1)
    last_moment_of_the_3rd = datetime(2026, 3, 3, 23, 59, tzinfo=UTC)
    fleet_poll(now=last_moment_of_the_3rd)

    assert telemetry_partitions_maintain(now=last_moment_of_the_3rd + timedelta(days=7)).dropped == []
    assert telemetry_partitions_maintain(now=datetime(2026, 3, 11, tzinfo=UTC)).dropped == [
        "clusters_gpusample_p20260303"
    ]


def test_the_lease_hour_summaries_outlive_the_dropped_samples(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User, settings
) -> None:
    node = fleet_of(1).nodes[0]
    start = timezone.now() - timedelta(days=9)
    lease_on(gpus_of(node), organization=acme, booked_by=alice, start=start, state=LeaseState.ACTIVE)
    fleet_poll(now=start + timedelta(minutes=5))

    telemetry_partitions_maintain()

    assert GpuSample.objects.count() == 0
    assert LeaseTelemetryHour.objects.get().readings == 8


def test_reading_a_lease_charts_touches_only_its_days_partitions(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User
) -> None:
    node = fleet_of(1).nodes[0]
    now = timezone.now()
    for days_ago in range(5):
        fleet_poll(now=now - timedelta(days=days_ago))
    telemetry_partitions_maintain()  # and the days ahead
    start = now - timedelta(days=1)
    lease = lease_on(
        gpus_of(node, [0, 1]),
        organization=acme,
        booked_by=alice,
        start=start,
        end=None,
        kind=LeaseKind.ON_DEMAND,
    )

    with CaptureQueriesContext(connection) as queries:
        telemetry = lease_telemetry(lease, since=start)

    [read] = [q["sql"] for q in queries.captured_queries if "clusters_gpusample" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {read}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    days = {f"clusters_gpusample_p{moment:%Y%m%d}" for moment in (start, now)}
    assert {name for name in partition_names() if name in plan} == days
    assert [len(gpu["samples"]) for gpu in telemetry.gpus] == [2, 2]


@pytest.fixture
def partitions_dropped_after() -> Iterator[None]:
    """Partitions made by a test whose transactions commit outlive its rows (a flush truncates them):
    drop those it made, so later tests find the tables as this one did."""
    before = set(partition_names())
    yield
    with connection.cursor() as cursor:
        for name in set(partition_names()) - before:
            cursor.execute(f"DROP TABLE {name}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_pollers_making_the_same_day_at_once_make_it_once(partitions_dropped_after: None) -> None:
    day = NOON.date()

    results = race([lambda: telemetry_partition_ensure(day=day) for _ in range(4)])

    assert errors_of(results) == [] and sorted(results) == [False, False, False, True]
    assert partition_names().count("clusters_gpusample_p20260310") == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_samples_written_before_the_partitioning_migration_are_readable_after(
    fleet_of: Callable[..., Fleet], partitions_dropped_after: None
) -> None:
    fleet_of(1)
    gpu_ids = list(GPU.objects.order_by("index").values_list("pk", flat=True))
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE_PARTITIONS])
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO clusters_gpusample (gpu_id, at, utilization_pct, temperature_c)"
                " SELECT gpu, %s - make_interval(days => n), n, 40 + n"
                " FROM unnest(%s::bigint[]) AS gpu, generate_series(0, 2) AS n",
                [NOON, gpu_ids],
            )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert GpuSample.objects.count() == 24
    oldest = GpuSample.objects.get(gpu_id=gpu_ids[3], at=NOON - timedelta(days=2))
    assert (oldest.utilization_pct, oldest.temperature_c) == (2, 42)
    assert partition_names() == ["clusters_gpusample_legacy"]
    fleet_poll(now=timezone.now() + timedelta(days=1))  # the next day gets a partition of its own
    assert partition_names()[-1] == f"clusters_gpusample_p{timezone.now() + timedelta(days=1):%Y%m%d}"
    assert GpuSample.objects.count() == 32
