"""Scarcity benchmark: capacity offerings latency against a same-run availability baseline, and how
long 1,000 queued requests take to be booked once the GPUs they need free, against a same-run
baseline of the same 1,000 bookings made directly.

On a 3,000-node fleet (24,000 GPUs) with 200,000 allocations (history over 180 days around now,
as bench/booking.py seeds it), in its own database (BENCH_SCARCITY_DATABASE_URL, default
.../voltpark_scarcity_bench). Writes its results under "## Scarcity" in docs/benchmarks.md.

    python -m bench.scarcity
"""

import io
import os
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voltpark.settings")
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_SCARCITY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/voltpark_scarcity_bench"
)
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
os.environ.setdefault("EMAIL_URL", "locmem://")  # the queue emails a thousand owners

import django  # noqa: E402

django.setup()

from allauth.account.models import EmailAddress  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.choices import Role  # noqa: E402
from accounts.models import Membership, Organization, User  # noqa: E402
from accounts.services.auth import user_create  # noqa: E402
from accounts.services.ssh_keys import ssh_key_add  # noqa: E402
from bench import BENCH_SSH_KEY  # noqa: E402
from bench.docs import section_write  # noqa: E402
from billing.choices import PaymentTerms  # noqa: E402
from billing.models import BillingAccount  # noqa: E402
from clusters.choices import LeaseKind, LeaseRequestState, LeaseState  # noqa: E402
from clusters.models import GPU, Allocation, Cluster, Lease, LeaseRequest, Node, Region  # noqa: E402
from clusters.selectors.capacity import Window, availability_for  # noqa: E402
from clusters.selectors.offerings import capacity_offerings  # noqa: E402
from clusters.services.booking import lease_book, lease_release  # noqa: E402
from clusters.services.fleet import fleet_seed, gpu_uuid  # noqa: E402
from clusters.services.lease_requests import lease_request_create, lease_requests_dispatch  # noqa: E402

NODES = 3000
ALLOCATIONS = 200_000
HISTORY = (timedelta(days=-120), timedelta(days=60))
QUERIES = int(os.environ.get("BENCH_OFFERINGS_QUERIES", "200"))
QUEUED = int(os.environ.get("BENCH_QUEUED_REQUESTS", "1000"))
QUEUE_REGION = "bench-queue"  # a region of its own, QUEUED GPUs, so the queue frees exactly what it needs
QUEUE_ORGANIZATIONS = 50
SIZES = [1, 1, 2, 4, 8, 8, 16, 64, 128]
LEASE_COLUMNS = (
    'id, public_id, organization_id, booked_by_id, region_id, gpus, kind, start, "end", state, '
    "price_per_gpu_hour, currency, ssh_public_keys, created_at, state_reason, health_flagged"
)


def log(message: str) -> None:
    print(f"[bench.scarcity] {message}", flush=True)


def prepare() -> Organization:
    """Migrate, seed the fleet and its allocation history once (kept between runs); the customer
    that asks (an organization with a large quota and no leases of its own)."""
    call_command("migrate", verbosity=0)
    owner, _ = User.objects.get_or_create(email="history@bench.example", defaults={"password": "!"})
    org, _ = Organization.objects.get_or_create(
        slug="bench-history", defaults={"name": "History", "gpu_quota": 10**6}
    )
    if not Allocation.objects.exists():
        fleet_seed(nodes=NODES)
        _seed_history(org, owner)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # index-only scans need the visibility map
    customer, _ = Organization.objects.get_or_create(
        slug="bench-customer", defaults={"name": "Customer", "gpu_quota": 10**6}
    )
    return customer


def _seed_history(org: Organization, owner: User) -> None:
    """Eight-GPU leases (200,000 allocations) spread over 180 days around now, ~35% busy."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.id, c.region_id, array_agg(g.id ORDER BY g.index) FROM clusters_node n "
            "JOIN clusters_cluster c ON c.id = n.cluster_id JOIN clusters_gpu g ON g.node_id = n.id "
            "GROUP BY n.id, c.region_id ORDER BY n.id"
        )
        nodes = cursor.fetchall()
    leases, allocations = io.StringIO(), io.StringIO()
    rng, now, lease_id = random.Random(42), timezone.now(), 1
    extra = ALLOCATIONS // 8 - len(nodes) * 8
    for i, (node_id, region_id, gpu_ids) in enumerate(nodes):
        count = 8 + (1 if i < extra else 0)
        slot = (HISTORY[1] - HISTORY[0]) / count
        for k in range(count):
            start = (now + HISTORY[0] + slot * k + slot * rng.uniform(0, 0.4)).replace(
                second=0, microsecond=0
            )
            end = start + timedelta(minutes=int(slot * rng.uniform(0.2, 0.55) / timedelta(minutes=1)))
            state = "ended" if end <= now else "active" if start <= now else "scheduled"
            leases.write(
                f"{lease_id}\t{uuid.uuid4()}\t{org.pk}\t{owner.pk}\t{region_id}\t8\treserved\t"
                f"{start.isoformat()}\t{end.isoformat()}\t{state}\t1.9900\tUSD\t[]\t{now.isoformat()}\t\tf\n"
            )
            for gpu_id in gpu_ids:
                allocations.write(
                    f"{lease_id}\t{gpu_id}\t{node_id}\t[{start.isoformat()},{end.isoformat()})\tt\n"
                )
            lease_id += 1
    leases.seek(0)
    allocations.seek(0)
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(f"COPY clusters_lease ({LEASE_COLUMNS}) FROM STDIN", leases)
        cursor.cursor.copy_expert(
            "COPY clusters_allocation (lease_id, gpu_id, node_id, period, is_live) FROM STDIN", allocations
        )
        cursor.execute("SELECT setval('clusters_lease_id_seq', (SELECT max(id) FROM clusters_lease))")
    log(f"seeded {Allocation.objects.count()} allocations")


def bench_offerings(org: Organization) -> dict[str, float]:
    """Offerings in every region for random sizes and lengths, one per region (the API's default)
    and three; the same-run baseline is one availability check of the same size and length in one
    region (what a booking page asks)."""
    rng = random.Random(5)
    regions = list(Region.objects.exclude(code=QUEUE_REGION).order_by("code"))
    timings: dict[str, list[float]] = {"one": [], "three": [], "availability": []}
    found = 0
    for _ in range(QUERIES):
        gpus, length = rng.choice(SIZES), timedelta(hours=rng.randint(1, 72))
        for name, per_region in (("one", 1), ("three", 3)):
            began = time.perf_counter()
            got = capacity_offerings(
                organization=org, gpus=gpus, length=length, regions=regions, per_region=per_region
            )
            timings[name].append(time.perf_counter() - began)
            found += len(got) if per_region == 1 else 0
        start = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=rng.randrange(0, 43200))
        began = time.perf_counter()
        availability_for(
            region=rng.choice(regions), window=Window(start, start + length), gpus=gpus, organization=org
        )
        timings["availability"].append(time.perf_counter() - began)
    result = {
        f"{name}_p{p}_ms": percentile(values, p) * 1000 for name, values in timings.items() for p in (50, 95)
    }
    return {**result, "found_per_query": found / QUERIES}


def queue_fleet() -> tuple[Region, list[tuple[User, Organization]]]:
    """The queue's region (QUEUED / 8 nodes in clusters of 32), emptied of earlier runs' leases and
    requests, and QUEUE_ORGANIZATIONS organizations (and their owners) that queue."""
    region, _ = Region.objects.get_or_create(
        code=QUEUE_REGION, defaults={"name": "Queue bench", "us_state": "-"}
    )
    for i in range(QUEUED // 8):
        cluster, _ = Cluster.objects.get_or_create(name=f"bq-c{i // 32:02d}", defaults={"region": region})
        node, made = Node.objects.get_or_create(
            hostname=f"bq-c{i // 32:02d}-n{i % 32:03d}", defaults={"cluster": cluster}
        )
        if made:
            GPU.objects.bulk_create(
                GPU(node=node, index=g, uuid=gpu_uuid(node.hostname, g)) for g in range(8)
            )
    Allocation.objects.filter(region=region, is_live=True).update(is_live=False)
    Lease.objects.filter(region=region, state__in=[LeaseState.SCHEDULED, LeaseState.ACTIVE]).update(
        state=LeaseState.ENDED
    )
    LeaseRequest.objects.filter(state=LeaseRequestState.QUEUED).update(state=LeaseRequestState.CANCELLED)
    people = []
    for i in range(QUEUE_ORGANIZATIONS):
        email = f"queue-{i}@bench.example"
        user = _customer(email)
        org, _ = Organization.objects.get_or_create(
            slug=f"bench-queue-{i}", defaults={"name": f"Queue {i}", "gpu_quota": 10**6}
        )
        Membership.objects.get_or_create(user=user, organization=org, defaults={"role": Role.OWNER})
        # On invoice terms, so that billing's payment check (a booking_check) lets it book.
        BillingAccount.objects.get_or_create(
            organization=org,
            defaults={"terms": PaymentTerms.INVOICED, "credit_limit": Decimal("1000000000.00")},
        )
        people.append((user, org))
    return region, people


def _customer(email: str) -> User:
    """A user who may book: a verified address (accounts.selectors.booking) and a key to install;
    made so by a later run too (users of earlier runs of this benchmark had neither)."""
    user = User.objects.filter(email=email).first() or user_create(email=email, email_verified=True)
    EmailAddress.objects.update_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True}
    )
    if not user.ssh_keys.exists():
        ssh_key_add(user=user, public_key=BENCH_SSH_KEY)
    return user


def bench_queue() -> dict[str, float]:
    """The region full with on-demand leases, QUEUED one-GPU requests queued behind them; all the
    leases released at once, then the queue dispatched: the seconds from the release committing to
    the last request booked. Baseline: the same bookings made directly, one after another."""
    region, people = queue_fleet()
    holder_user, holder = people[0]
    held = [
        lease_book(user=holder_user, organization=holder, region=region, gpus=8, kind=LeaseKind.ON_DEMAND)
        for _ in range(QUEUED // 8)
    ]
    Lease.objects.filter(pk__in=[lease.pk for lease in held]).update(state=LeaseState.ACTIVE)
    for i in range(QUEUED):
        user, org = people[i % len(people)]
        lease_request_create(user=user, organization=org, gpus=1, kind=LeaseKind.ON_DEMAND, region=region)
    time.sleep(1)  # released leases must have started before now
    for lease in Lease.objects.filter(pk__in=[lease.pk for lease in held]):
        lease_release(user=holder_user, lease=lease)
    began = time.perf_counter()
    report = lease_requests_dispatch()
    dispatch_s = time.perf_counter() - began
    booked = len(report.booked) if report else 0
    queue_fleet()
    began = time.perf_counter()
    for i in range(QUEUED):
        user, org = people[i % len(people)]
        lease_book(user=user, organization=org, region=region, gpus=1, kind=LeaseKind.ON_DEMAND)
    direct_s = time.perf_counter() - began
    queue_fleet()
    return {"dispatch_s": dispatch_s, "booked": booked, "direct_s": direct_s}


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1] if len(values) > 1 else values[0]


def load_average() -> str:
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


def write_report(offerings: dict[str, float], queue: dict[str, float], allocations: int, load: str) -> str:
    """The run's figures, written on top of "## Scarcity" in docs/benchmarks.md (earlier runs kept)."""
    rows = [
        (
            f"offerings, every region, one per region (API default): {QUERIES} random sizes 1-128 GPUs, "
            "lengths 1-72 h, p50 / p95",
            f"{offerings['one_p50_ms']:.1f} ms / {offerings['one_p95_ms']:.1f} ms",
        ),
        (
            "the same, three per region (`per_region=3`) p50 / p95",
            f"{offerings['three_p50_ms']:.1f} ms / {offerings['three_p95_ms']:.1f} ms",
        ),
        (
            "baseline: one availability check of the same size and length, one region, p50 / p95",
            f"{offerings['availability_p50_ms']:.1f} ms / {offerings['availability_p95_ms']:.1f} ms",
        ),
        (
            "**ratio offerings p95 (one per region) / availability p95**",
            f"**{offerings['one_p95_ms'] / offerings['availability_p95_ms']:.2f}**",
        ),
        ("offerings found per query, one per region (3 regions)", f"{offerings['found_per_query']:.2f}"),
        (
            f"**{QUEUED:,} queued one-GPU requests booked, from the release of the GPUs they need to the "
            "last "
            "booked (one dispatcher)**",
            f"**{queue['booked']:,.0f} in {queue['dispatch_s']:.1f} s**",
        ),
        (
            f"baseline: the same {QUEUED:,} bookings made directly (lease_book, one after another)",
            f"{queue['direct_s']:.1f} s (ratio {queue['dispatch_s'] / queue['direct_s']:.2f})",
        ),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    report = (
        f"## Scarcity\n\n`python -m bench.scarcity` ({datetime.now(UTC):%Y-%m-%d}), {os.cpu_count()} cores "
        f"shared with other engineers' work (load average {load} at the end: absolute figures are noisy,\n"
        f"the ratios to the same-run baseline less so). Fleet: {NODES:,} nodes / {NODES * 8:,} GPUs with "
        f"{allocations:,} allocations.\n\n| measure | value |\n| --- | --- |\n{table}\n"
    )
    section_write(report)
    return report


def main() -> None:
    org = prepare()
    allocations = Allocation.objects.count()
    log(f"{allocations} allocations; offerings…")
    offerings = bench_offerings(org)
    log(f"offerings {offerings}; queue…")
    queue = bench_queue()
    log(f"queue {queue}")
    print(write_report(offerings, queue, allocations, load_average()))


if __name__ == "__main__":
    main()
