"""Billing benchmark: closing a month for 2,000 organizations (500,000 usage-hour rows, their ledger
debits included), exporting a million invoice lines as CSV, and one hour's metering plus ledger
debits for a fleet of 24,000 busy GPUs, each against a raw-SQL baseline of the same sums.

Runs against its own database (`BENCH_DATABASE_URL`, else DATABASE_URL's name + `_bench`), which it
empties first. Each measured step runs in a fresh process that reports its time and peak memory.
Results go under "## Billing" in docs/benchmarks.md.

    python -m bench.billing            # seed, measure, write docs/benchmarks.md
    python -m bench.billing --close 3  # only the close against its baselines, 3 fresh seeds; prints
"""

import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.docs import section_write

ORGANIZATIONS = 2000
HOURS_PER_LEASE = 250  # 2,000 one-GPU leases × 250 hours = 500,000 usage-hour rows
EXPORT_LINES = 1_000_000
MARCH = datetime(2026, 3, 1, tzinfo=UTC)
FEBRUARY = datetime(2026, 2, 1, tzinfo=UTC)
NOW = datetime(2026, 4, 2, tzinfo=UTC)
# The hourly step: a fleet of 3,000 eight-GPU nodes, every GPU busy, in the middle of March.
BUSY_NODES = 3000
HOUR_NOW = datetime(2026, 3, 15, 12, 30, tzinfo=UTC)


def bench_database_url() -> str | None:
    if os.environ.get("BENCH_DATABASE_URL"):
        return os.environ["BENCH_DATABASE_URL"]
    base = os.environ.get("DATABASE_URL")
    if not base:
        return None
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_bench"))


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"] = url  # children inherit both
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voltpark.settings")
    import django
    from django.conf import settings

    django.setup()
    settings.CELERY_BROKER_URL = "memory://"  # tasks queued on commit (PDFs) stay out of Redis


def create_database(url: str) -> None:
    import psycopg2

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


# --- seeding (in the parent process)


def empty_tables() -> None:
    from django.apps import apps
    from django.db import connection

    tables = [
        m._meta.db_table
        for app in ("accounts", "clusters", "billing")
        for m in apps.get_app_config(app).get_models()
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def seed_fleet_and_leases() -> None:
    """2,000 prepaid organizations, each with one one-GPU on-demand lease of 250 hours in March, on its
    own GPU: the close debits their usage from the balance (the ledger) and invoices it."""
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
    from django.db.backends.postgresql.psycopg_any import DateTimeTZRange

    from accounts.models import Organization, User
    from clusters.models import GPU, Allocation, Cluster, Lease, Node, Region

    user = User.objects.create_user("bench@voltpark.example", "bench-password-123")
    frank = User.objects.create_user("frank@voltpark.example", "bench-password-123", is_finance_staff=True)
    TOTP.activate(frank, generate_totp_secret())  # staff answer only with a second factor
    regions = [Region.objects.create(code=f"us-r{i}", name=f"Region {i}", us_state="Texas") for i in range(3)]
    clusters = [Cluster.objects.create(region=r, name=f"c-{r.code}") for r in regions]
    nodes = Node.objects.bulk_create(
        Node(cluster=clusters[i % 3], hostname=f"b-n{i:04d}") for i in range(250)
    )
    gpus = GPU.objects.bulk_create(
        GPU(node=n, index=i, uuid=f"GPU-{n.hostname}-{i}") for n in nodes for i in range(8)
    )
    orgs = Organization.objects.bulk_create(
        Organization(name=f"Org {i}", slug=f"org-{i}", billing_email=f"b{i}@example.com")
        for i in range(ORGANIZATIONS)
    )
    leases = []
    for i, org in enumerate(orgs):
        start = MARCH + timedelta(hours=i % 400, minutes=i % 60, seconds=i % 7)
        leases.append(
            Lease(
                organization=org,
                booked_by=user,
                region=gpus[i].node.cluster.region,
                gpus=1,
                kind="on_demand",
                start=start,
                end=start + timedelta(hours=HOURS_PER_LEASE),
                state="ended",
                price_per_gpu_hour="2.4900",
            )
        )
    Lease.objects.bulk_create(leases)
    Allocation.objects.bulk_create(
        Allocation(
            lease=lease, gpu=gpu, node_id=gpu.node_id, period=DateTimeTZRange(lease.start, lease.end, "[)")
        )
        for lease, gpu in zip(leases, gpus, strict=True)
    )


def seed_export_lines() -> None:
    """A million invoice lines: 2,000 February invoices of 500 lines each, written in SQL (as drafts,
    finalized once their lines are in: PostgreSQL refuses lines added to a finalized invoice)."""
    from django.db import connection

    sql = """
    INSERT INTO billing_invoice (public_id, organization_id, kind, status, number, period_start, period_end,
        currency, subtotal, credits, total, note, created_at, issued_at, stripe_hosted_url,
        stripe_credit_note_id)
    SELECT gen_random_uuid(), o.id, 'invoice', 'draft', 'VP-2026-B' || lpad(o.id::text, 6, '0'),
        %(feb)s, %(mar)s, 'USD', 500 * 12.45, 0, 500 * 12.45, '', now(), now(), '', ''
    FROM accounts_organization o;
    INSERT INTO billing_invoiceline (invoice_id, position, kind, description, lease_id, region_id, gpus,
        gpu_hours, price_per_gpu_hour, amount)
    SELECT i.id, p, 'usage', '1× H100 reserved, lease "' || l.public_id || '", hours, in ' || r.code,
        l.id, l.region_id, 1, 5.000, 2.4900, 12.45
    FROM billing_invoice i JOIN clusters_lease l ON l.organization_id = i.organization_id
    JOIN clusters_region r ON r.id = l.region_id CROSS JOIN generate_series(1, %(per)s) AS p
    WHERE i.period_start = %(feb)s;
    UPDATE billing_invoice SET status = 'open' WHERE period_start = %(feb)s;
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"feb": FEBRUARY, "mar": MARCH, "per": EXPORT_LINES // ORGANIZATIONS})
        cursor.execute("ANALYZE")


def seed_busy_fleet() -> None:
    """3,000 nodes (24,000 GPUs) each running one 8-GPU on-demand lease now, after two that ended
    earlier in the month; 9,000 leases of 2,000 organizations. Metered and debited up to an hour
    ago, as the hourly tasks would have left it."""
    from django.db.backends.postgresql.psycopg_any import DateTimeTZRange

    from accounts.models import Organization, User
    from billing.services.debits import usage_debit
    from billing.services.metering import usage_meter
    from clusters.models import GPU, Allocation, Cluster, Lease, Node, Region

    user = User.objects.create_user("bench@voltpark.example", "bench-password-123")
    regions = [Region.objects.create(code=f"us-r{i}", name=f"Region {i}", us_state="Texas") for i in range(3)]
    clusters = [Cluster.objects.create(region=r, name=f"c-{r.code}-{j}") for r in regions for j in range(8)]
    nodes = Node.objects.bulk_create(
        (Node(cluster=clusters[i % len(clusters)], hostname=f"h-n{i:05d}") for i in range(BUSY_NODES)),
        batch_size=2000,
    )
    GPU.objects.bulk_create(
        (GPU(node=n, index=i, uuid=f"GPU-{n.hostname}-{i}") for n in nodes for i in range(8)), batch_size=5000
    )
    orgs = Organization.objects.bulk_create(
        Organization(name=f"Org {i}", slug=f"org-{i}", billing_email=f"b{i}@example.com")
        for i in range(ORGANIZATIONS)
    )
    gpus_of: dict[int, list[int]] = {}
    for gpu_id, node_id in GPU.objects.values_list("id", "node_id"):
        gpus_of.setdefault(node_id, []).append(gpu_id)
    leases, periods = [], []
    for n, node in enumerate(nodes):
        offset = MARCH + timedelta(hours=n % 48, minutes=n % 60, seconds=n % 7)
        for k, (lo, hi) in enumerate(((0, 100), (110, 200), (210, None))):
            start = offset + timedelta(hours=lo)
            end = None if hi is None else offset + timedelta(hours=hi)
            leases.append(
                Lease(
                    organization=orgs[(3 * n + k) % ORGANIZATIONS],
                    booked_by=user,
                    region=node.cluster.region,
                    gpus=8,
                    kind="on_demand",
                    start=start,
                    end=end,
                    state="active" if end is None else "ended",
                    price_per_gpu_hour="2.4900",
                )
            )
            periods.append((node, start, end))
    Lease.objects.bulk_create(leases, batch_size=2000)
    Allocation.objects.bulk_create(
        (
            Allocation(lease=lease, gpu_id=gpu_id, node_id=node.pk, period=DateTimeTZRange(start, end, "[)"))
            for lease, (node, start, end) in zip(leases, periods, strict=True)
            for gpu_id in gpus_of[node.pk]
        ),
        batch_size=5000,
    )
    an_hour_ago = HOUR_NOW - timedelta(hours=1)
    usage_meter(start=MARCH, end=an_hour_ago, now=an_hour_ago)
    usage_debit(now=HOUR_NOW - timedelta(minutes=5))
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --- measured steps (each in its own process)

BASELINE_CLOSE_SQL = """
SELECT l.organization_id, SUM(ROUND(
    EXTRACT(EPOCH FROM LEAST(upper(a.period), %(e)s) - GREATEST(lower(a.period), %(s)s))
    * l.price_per_gpu_hour / 3600, 2)) AS owed
FROM clusters_allocation a JOIN clusters_lease l ON l.id = a.lease_id
WHERE a.is_live AND a.period && tstzrange(%(s)s, %(e)s, '[)')
GROUP BY l.organization_id
"""

# The same sums hour by hour, as metering computes them, but only read: no rows written.
BASELINE_HOURLY_SQL = """
WITH held AS (
    SELECT l.organization_id, l.price_per_gpu_hour AS price,
           GREATEST(date_trunc('second', lower(a.period)), %(s)s) AS lo,
           LEAST(date_trunc('second', upper(a.period)), %(e)s) AS hi
    FROM clusters_allocation a JOIN clusters_lease l ON l.id = a.lease_id
    WHERE a.is_live AND a.period && tstzrange(%(s)s, %(e)s, '[)')
), hours AS (
    SELECT organization_id, price,
           EXTRACT(EPOCH FROM LEAST(hi, h + interval '1 hour') - GREATEST(lo, h))::bigint AS secs
    FROM held CROSS JOIN LATERAL generate_series(date_trunc('hour', lo), hi - interval '1 microsecond',
                                                  interval '1 hour') AS h
)
SELECT organization_id, ROUND(SUM(secs * price) / 3600, 2), count(*) FROM hours GROUP BY organization_id
"""

BASELINE_EXPORT_SQL = """
COPY (SELECT i.number, i.status, o.name, i.period_start, l.position, l.kind, l.description, r.code, l.gpus,
             l.gpu_hours, l.price_per_gpu_hour, l.amount, i.currency, le.public_id
      FROM billing_invoiceline l JOIN billing_invoice i ON i.id = l.invoice_id
      JOIN accounts_organization o ON o.id = i.organization_id
      LEFT JOIN clusters_region r ON r.id = l.region_id LEFT JOIN clusters_lease le ON le.id = l.lease_id
      WHERE i.period_start >= %(feb)s AND i.period_start < %(mar)s
      ORDER BY i.period_start, l.invoice_id, l.position) TO STDOUT WITH (FORMAT csv, HEADER)
"""


class Counter:
    """A sink that counts what is written to it."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: Any) -> int:
        self.bytes += len(data)
        return len(data)


def step_baseline_close() -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(BASELINE_CLOSE_SQL, {"s": MARCH, "e": datetime(2026, 4, 1, tzinfo=UTC)})
        owed = cursor.fetchall()
    return {"organizations": len(owed), "total": str(sum(row[1] for row in owed))}


def step_baseline_hourly() -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(BASELINE_HOURLY_SQL, {"s": MARCH, "e": datetime(2026, 4, 1, tzinfo=UTC)})
        owed = cursor.fetchall()
    return {"hour_rows": sum(row[2] for row in owed), "total": str(sum(row[1] for row in owed))}


def step_close() -> dict[str, Any]:
    from django.db.models import Sum

    from billing.models import Invoice, UsageHour
    from billing.services.invoicing import month_close

    result = month_close(period_start=MARCH, now=NOW)
    total = Invoice.objects.filter(period_start=MARCH).aggregate(s=Sum("subtotal"))["s"]
    return {"invoices": result.finalized, "usage_rows": UsageHour.objects.count(), "total": str(total)}


def step_baseline_export() -> dict[str, Any]:
    from django.db import connection

    sink = Counter()
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(
            cursor.mogrify(BASELINE_EXPORT_SQL, {"feb": FEBRUARY, "mar": MARCH}).decode(), sink
        )
    return {"bytes": sink.bytes}


def step_export() -> dict[str, Any]:
    from rest_framework.test import APIClient

    from accounts.models import User

    client = APIClient()
    client.force_authenticate(User.objects.get(email="frank@voltpark.example"))
    response = client.get("/api/v1/exports/invoice-lines.csv?period_from=2026-02-01&period_to=2026-03-01")
    size = lines = 0
    for chunk in response.streaming_content:  # type: ignore[attr-defined]
        size += len(chunk)
        lines += chunk.count(b"\r\n")
    return {"bytes": size, "csv_records_and_line_breaks": lines, "status": response.status_code}


def step_baseline_hour() -> dict[str, Any]:
    from django.db import connection

    from core.periods import floor_hour

    with connection.cursor() as cursor:
        cursor.execute(BASELINE_HOURLY_SQL, {"s": floor_hour(HOUR_NOW) - timedelta(hours=1), "e": HOUR_NOW})
        owed = cursor.fetchall()
    return {"hour_rows": sum(row[2] for row in owed), "total": str(sum(row[1] for row in owed))}


def step_hourly() -> dict[str, Any]:
    """What beat runs each hour for the fleet: meter the last and the current hour, debit usage."""
    from billing.models import LedgerEntry
    from billing.services.debits import usage_debit
    from billing.services.metering import usage_meter
    from core.periods import floor_hour

    before = LedgerEntry.objects.count()
    metered = usage_meter(start=floor_hour(HOUR_NOW) - timedelta(hours=1), end=HOUR_NOW, now=HOUR_NOW)
    [debited] = usage_debit(now=HOUR_NOW)
    return {
        "usage_rows_written": metered.written,
        "organizations_debited": debited.organizations,
        "ledger_entries": LedgerEntry.objects.count() - before,
        "total": str(debited.total),
    }


STEPS = {
    "baseline_close": step_baseline_close,
    "baseline_hourly": step_baseline_hourly,
    "close": step_close,
    "baseline_export": step_baseline_export,
    "export": step_export,
    "baseline_hour": step_baseline_hour,
    "hourly": step_hourly,
}


def run_step(name: str) -> None:
    """Child process: run one step and print its time and peak memory as JSON."""
    setup_django(bench_database_url() or "")
    started = time.perf_counter()
    result = STEPS[name]()
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps({"step": name, "seconds": round(seconds, 3), "peak_rss_mb": round(peak_mb, 1), **result})
    )


def measure(name: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.billing", "--step", name], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"bench.billing step {name} failed:\n{done.stderr}")
    output = done.stdout
    measured = json.loads(output.strip().splitlines()[-1])
    print(f"  {name}: {measured}", flush=True)
    return measured


# --- report


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "?")
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    memory_gb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")) / 1024 / 1024
    return f"{os.cpu_count()} cores ({cpu}), {memory_gb:.0f} GB RAM, Python {platform.python_version()}"


def _cost(step: dict[str, Any]) -> str:
    return f"{step['seconds']:.2f} s, {step['peak_rss_mb']:.0f} MB"


def report(results: dict[str, dict[str, Any]]) -> str:
    close, export, hourly_run = results["close"], results["export"], results["hourly"]
    base, hourly, copy = results["baseline_close"], results["baseline_hourly"], results["baseline_export"]
    rows = [
        (
            f"close March: meter {close['usage_rows']:,} usage-hour rows from allocations, "
            f"{close['invoices']:,} invoices (lines, SLA credits, credits, numbers, audit)",
            close,
            base,
            "one query: each organization's rounded sum straight from allocations",
        ),
        (
            "(same close)",
            close,
            hourly,
            f"one query: the same {hourly['hour_rows']:,} lease-hours expanded and summed, nothing written",
        ),
        (
            f"export {EXPORT_LINES:,} invoice lines as CSV through the API view "
            f"({export['bytes'] / 1e6:.0f} MB)",
            export,
            copy,
            "PostgreSQL `COPY … TO STDOUT WITH CSV` of the same join",
        ),
        (
            f"an hour of a busy fleet ({BUSY_NODES * 8:,} GPUs, {BUSY_NODES:,} running leases): meter the "
            f"last and current hour ({hourly_run['usage_rows_written']:,} usage rows written), debit "
            f"{hourly_run['organizations_debited']:,} organizations ({hourly_run['ledger_entries']:,} ledger "
            "entries)",
            hourly_run,
            results["baseline_hour"],
            "one query: the same lease-hours summed per organization, nothing written",
        ),
    ]
    table = [
        f"| {what} | {_cost(step)} | {_cost(base_)} ({how}) | {step['seconds'] / base_['seconds']:.1f}× |"
        for what, step, base_, how in rows
    ]
    return "\n".join(
        [
            "## Billing",
            "",
            f"`python -m bench.billing`, {datetime.now(UTC):%Y-%m-%d}, on {machine()}; PostgreSQL 15 on the "
            "same machine. Each step runs in a fresh process; memory is that process's peak resident set "
            "size. Most of the close is writing the usage rows (the primary key, the unique (lease, hour) "
            "key, two indexes and the lease's foreign key checked at commit). The machine is shared with "
            "other engineers' work: absolute times are noisy, ratios to the same-run baselines less so.",
            "",
            "| step | time, peak memory | baseline in the same run: time, peak memory | ratio |",
            "| --- | --- | --- | --- |",
            *table,
            "",
            f"Check: the invoices' subtotals add up to {close['total']} USD; the baselines to "
            f"{base['total']} and {hourly['total']} USD. "
            f"The hourly run debited {hourly_run['total']} USD. Load average at the end: "
            f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (other engineers' work on the same machine). "
            "Aims: the close within 20× the hourly-sum baseline, the export under 200 MB, the hourly run "
            "under 10 s.",
            "",
        ]
    )


def prepare() -> None:
    """The bench's own database, migrated; Django set up on it."""
    url = bench_database_url()
    if url is None:
        raise SystemExit("bench.billing: set DATABASE_URL (or BENCH_DATABASE_URL) to a PostgreSQL server.")
    create_database(url)
    setup_django(url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def close_only(runs: int) -> None:
    """The close and its baselines alone, each run on a fresh seed; the ratios printed, no report."""
    prepare()
    for run in range(1, runs + 1):
        empty_tables()
        seed_fleet_and_leases()
        analyze()
        results = {name: measure(name) for name in ("baseline_close", "baseline_hourly", "close")}
        ratio = results["close"]["seconds"] / results["baseline_hourly"]["seconds"]
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f"run {run}: close {results['close']['seconds']:.2f} s, {ratio:.1f}x the hourly sum; load {load}"
        )


def main() -> None:
    url = bench_database_url()
    if url is None:
        print("bench.billing: set DATABASE_URL (or BENCH_DATABASE_URL) to a PostgreSQL server; skipped.")
        return
    create_database(url)
    setup_django(url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print("  seeding…", flush=True)
    empty_tables()
    seed_fleet_and_leases()
    analyze()  # statistics as a live database has them (autovacuum would otherwise come at random)
    results = {name: measure(name) for name in ("baseline_close", "baseline_hourly", "close")}
    seed_export_lines()
    results |= {name: measure(name) for name in ("baseline_export", "export")}
    print("  seeding the busy fleet…", flush=True)
    empty_tables()
    seed_busy_fleet()
    results |= {name: measure(name) for name in ("baseline_hour", "hourly")}
    section = report(results)
    section_write(section)
    print(section)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--step":
        run_step(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "--close":
        close_only(int(sys.argv[2]))
    else:
        main()
