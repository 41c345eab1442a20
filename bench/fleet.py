"""Run-time benchmark: one sweep of 3,000 simulated nodes, and 10,000 leases starting and ending at once.

python -m bench.fleet  (uses DATABASE_URL, default postgres://postgres@127.0.0.1:5432/voltpark_runtime_bench;
the database is emptied first). The simulated agent runs as its own process (`python -m nodeagent
--simulate`), as it would on other machines. Each measurement has a baseline from the same run:
the same HTTP requests issued by a bare aiohttp loop, plus the same rows written by one raw SQL statement.
"""

import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

NODES = 3000
LEASES = 10_000
SWEEPS = 3
PORT = int(os.environ.get("BENCH_AGENT_PORT", "18390"))
TOKEN = "bench-agent-token"
ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/voltpark_runtime_bench")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voltpark.settings")
    os.environ.setdefault("EMAIL_URL", "dummy://")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def reset_database() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE clusters_gpusample, clusters_leaseusagehour, clusters_leasenotice, clusters_allocation,"
            " clusters_healthevent_leases, clusters_healthevent, clusters_lease, clusters_gpu, clusters_node,"
            " clusters_cluster, clusters_region, accounts_auditentry CASCADE"
        )


def start_agent(hostnames: list[str], workdir: Path) -> subprocess.Popen[bytes]:
    hosts = workdir / "hosts.txt"
    hosts.write_text("\n".join(hostnames) + "\n")
    command = [sys.executable, "-m", "nodeagent", "--simulate", "--hostnames-file", str(hosts)]
    command += ["--port", str(PORT), "--token", TOKEN, "--lease-root", str(workdir / "leases")]
    agent = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import httpx

    url = f"http://127.0.0.1:{PORT}/nodes/{hostnames[0]}/v1/health"
    for _ in range(200):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return agent
        except httpx.HTTPError:
            time.sleep(0.1)
    agent.kill()
    raise RuntimeError("the simulated agent did not start")


async def _bare(method: str, urls: list[str], concurrency: int) -> int:
    import aiohttp

    headers = {"Authorization": f"Bearer {TOKEN}"}
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(url: str) -> int:
            async with semaphore, session.request(method, url, headers=headers) as response:
                await response.read()
                return response.status

        codes = await asyncio.gather(*(one(url) for url in urls))
    return sum(1 for code in codes if code in (200, 404))


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def bench_sweep(urls: list[str]) -> dict[str, float]:
    from django.conf import settings
    from django.db import connection

    from clusters.models import GpuSample
    from clusters.services.telemetry import fleet_poll

    settings.TELEMETRY_SAMPLE_INTERVAL_S = 1  # every sweep stores all 24,000 samples
    sweeps, stored = [], []
    for _ in range(SWEEPS):
        seconds, report = timed(fleet_poll)
        assert report.answered == NODES and report.gpus_read == NODES * 8, report
        sweeps.append(seconds)
        stored.append(report.samples_stored)
        time.sleep(1.0)
    fetch = [timed(asyncio.run, _bare("GET", urls, settings.POLL_CONCURRENCY))[0] for _ in range(SWEEPS)]
    with connection.cursor() as cursor:  # the same 24,000 latest readings written by one raw UPDATE
        started = time.perf_counter()
        cursor.execute("UPDATE clusters_gpu SET utilization_pct = utilization_pct + 0, read_at = now()")
        write = time.perf_counter() - started
    return {
        "sweep_s": statistics.median(sweeps),
        "sweep_best_s": min(sweeps),
        "samples_per_sweep": min(stored),
        "samples_total": GpuSample.objects.count(),
        "bare_fetch_s": statistics.median(fetch),
        "raw_update_s": write,
    }


def make_leases() -> list[int]:
    from django.contrib.postgres.fields.ranges import DateTimeTZRange
    from django.utils import timezone

    from accounts.models import Organization, User
    from clusters.models import GPU, Allocation, Lease, Region

    user = User.objects.create_user("bench@voltpark.example", "bench-password-1")
    org = Organization.objects.create(name="Bench", slug="bench")
    region = Region.objects.first()
    start = timezone.now() - timedelta(seconds=1)
    end = start + timedelta(hours=1)
    gpus = list(GPU.objects.order_by("pk").values_list("pk", "node_id")[:LEASES])
    leases = Lease.objects.bulk_create(
        Lease(
            organization=org,
            booked_by=user,
            region=region,
            gpus=1,
            kind="reserved",
            start=start,
            end=end,
            price_per_gpu_hour="1.99",
            ssh_public_keys=[BENCH_KEY],
        )
        for _ in gpus
    )
    Allocation.objects.bulk_create(
        Allocation(lease=lease, gpu_id=gpu, node_id=node, period=DateTimeTZRange(start, end, "[)"))
        for lease, (gpu, node) in zip(leases, gpus, strict=True)
    )
    return [lease.pk for lease in leases]


BENCH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c bench"


def bench_leases(base: str) -> dict[str, float]:
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from clusters.models import Lease
    from clusters.services.lifecycle import EnforceReport, leases_end_due, leases_start_due

    ids = make_leases()
    report = EnforceReport()
    start_s, _ = timed(leases_start_due, now=timezone.now(), report=report)
    assert report.started == LEASES, report
    Lease.objects.update(end=timezone.now())
    end_s, ended = timed(leases_end_due, now=timezone.now())
    assert ended == LEASES, ended
    urls = [
        f"{base}/nodes/{host}/v1/leases/{public_id}"
        for public_id, host in Lease.objects.values_list("public_id", "allocations__node__hostname")
    ]
    http_s, _ = timed(asyncio.run, _bare("DELETE", urls, settings.POLL_CONCURRENCY))
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(
            "UPDATE clusters_lease SET state = 'ended', ended_at = now() WHERE id = ANY(%s)", [ids]
        )
        sql_s = time.perf_counter() - started
    return {"start_s": start_s, "end_s": end_s, "bare_delete_s": http_s, "raw_sql_s": sql_s}


def main() -> None:
    setup_django()
    from django.conf import settings

    from clusters.models import Node
    from clusters.services.fleet import fleet_seed

    reset_database()
    base = f"http://127.0.0.1:{PORT}"
    fleet_seed(nodes=NODES, agent_base=base, agent_token=TOKEN)
    hostnames = list(Node.objects.order_by("hostname").values_list("hostname", flat=True))
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as workdir:
        agent = start_agent(hostnames, Path(workdir))
        try:
            urls = [f"{base}/nodes/{host}/v1/gpus" for host in hostnames]
            sweep = bench_sweep(urls)
            leases = bench_leases(base)
        finally:
            agent.terminate()
            agent.wait(timeout=10)
    baseline_sweep = sweep["bare_fetch_s"] + sweep["raw_update_s"]
    baseline_end = leases["bare_delete_s"] + leases["raw_sql_s"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"concurrency {settings.POLL_CONCURRENCY}, lease batch {settings.LEASE_SWEEP_BATCH}")
    print(
        f"sweep of {NODES} nodes ({NODES * 8} readings, {sweep['samples_per_sweep']} samples stored): "
        f"median {sweep['sweep_s']:.2f}s, best {sweep['sweep_best_s']:.2f}s; baseline (bare aiohttp GETs "
        f"{sweep['bare_fetch_s']:.2f}s + one raw UPDATE {sweep['raw_update_s']:.2f}s) "
        f"= {baseline_sweep:.2f}s; "
        f"ratio {sweep['sweep_s'] / baseline_sweep:.2f}x"
    )
    print(f"starting {LEASES} leases due at once: {leases['start_s']:.2f}s")
    print(
        f"ending {LEASES} leases due at once: {leases['end_s']:.2f}s; baseline (bare aiohttp DELETEs "
        f"{leases['bare_delete_s']:.2f}s + one raw UPDATE {leases['raw_sql_s']:.2f}s) = {baseline_end:.2f}s; "
        f"ratio {leases['end_s'] / baseline_end:.2f}x"
    )


if __name__ == "__main__":
    main()
