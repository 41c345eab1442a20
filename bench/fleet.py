"""Run-time benchmark: one sweep of 3,000 simulated nodes, 10,000 leases starting and ending at once,
and how late leases start under a real Celery worker and beat.

python -m bench.fleet  (uses DATABASE_URL, default postgres://postgres@127.0.0.1:5432/voltpark_runtime_bench,
and REDIS_URL for the lateness part, whose database it empties; the run-time tables are emptied first).
BENCH_AGENT_PORT (default 18390) is the simulated agent's port; BENCH_LATENESS=0 skips the lateness part
(two real worker + beat runs, ~2 minutes); BENCH_TMPFS=0 keeps the agent's lease tree off /dev/shm.
The simulated agent runs as its own process (`python -m nodeagent --simulate`), as it would on other
machines. Each measurement has a baseline from the same run: the same HTTP requests (same agent
work) issued by a bare aiohttp loop, plus the same rows written by one raw SQL statement.
"""

import asyncio
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

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


LEASE_TABLES = "clusters_leasetelemetryhour, clusters_leasenotice, clusters_allocation, clusters_lease"


def reset_database() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"TRUNCATE clusters_gpusample, {LEASE_TABLES}, clusters_healthevent_leases, clusters_healthevent,"
            " clusters_gpu, clusters_node, clusters_cluster, clusters_region, accounts_auditentry CASCADE"
        )
        cursor.execute("DELETE FROM accounts_organization WHERE slug = 'bench'")
        cursor.execute("DELETE FROM accounts_user WHERE email = 'bench@voltpark.example'")


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


async def _bare(method: str, urls: list[str], concurrency: int, body: dict | None = None) -> int:
    import aiohttp

    headers = {"Authorization": f"Bearer {TOKEN}"}
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(url: str) -> int:
            async with semaphore, session.request(method, url, headers=headers, json=body) as response:
                await response.read()
                return response.status

        codes = await asyncio.gather(*(one(url) for url in urls))
    return sum(1 for code in codes if code == 200)


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def bench_sweep(urls: list[str]) -> dict[str, float]:
    from django.conf import settings
    from django.db import connection

    from clusters.models import GpuSample
    from clusters.services.telemetry import fleet_poll

    settings.TELEMETRY_SAMPLE_INTERVAL_S = 1  # every sweep stores all 24,000 samples
    fleet_poll()  # warm-up: the first sweep also pays for the agent's first readings
    time.sleep(1.0)
    sweeps, stored = [], []
    for _ in range(SWEEPS):
        seconds, report = timed(fleet_poll)
        assert report.answered == NODES and report.gpus_read == NODES * 8, report
        sweeps.append(seconds)
        stored.append(report.samples_stored)
        time.sleep(1.0)
    fetch = [timed(asyncio.run, _bare("GET", urls, settings.POLL_CONCURRENCY))[0] for _ in range(SWEEPS)]
    writes = []
    for _ in range(SWEEPS):  # the same 24,000 latest readings written by one raw UPDATE
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute("UPDATE clusters_gpu SET utilization_pct = utilization_pct + 0, read_at = now()")
            writes.append(time.perf_counter() - started)
    write = statistics.median(writes)
    return {
        "sweep_s": statistics.median(sweeps),
        "sweep_best_s": min(sweeps),
        "sweep_worst_s": max(sweeps),
        "samples_per_sweep": min(stored),
        "samples_total": GpuSample.objects.count(),
        "bare_fetch_s": statistics.median(fetch),
        "raw_update_s": write,
    }


def bench_owner() -> tuple["Organization", "User"]:  # type: ignore[name-defined]  # noqa: F821
    from accounts.models import Organization, User

    user = User.objects.filter(email="bench@voltpark.example").first()
    user = user or User.objects.create_user("bench@voltpark.example", "bench-password-1")
    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    return org, user


def make_leases(count: int = LEASES, *, offset: int = 0, starts: list | None = None) -> list[int]:
    """`count` one-GPU leases on the GPUs from `offset` on, starting now (or at `starts[i]`) for an hour."""
    from django.utils import timezone
    from psycopg2.extras import DateTimeTZRange

    from clusters.models import GPU, Allocation, Lease, Region

    org, user = bench_owner()
    region = Region.objects.first()
    now = timezone.now() - timedelta(seconds=1)
    starts = starts or [now] * count
    gpus = list(GPU.objects.order_by("pk").values_list("pk", "node_id")[offset : offset + count])
    leases = Lease.objects.bulk_create(
        Lease(
            organization=org,
            booked_by=user,
            region=region,
            gpus=1,
            kind="reserved",
            start=start,
            end=start + timedelta(hours=1),
            price_per_gpu_hour="1.99",
            ssh_public_keys=[BENCH_KEY],
        )
        for start in starts
    )
    Allocation.objects.bulk_create(
        Allocation(
            lease=lease, gpu_id=gpu, node_id=node, period=DateTimeTZRange(lease.start, lease.end, "[)")
        )
        for lease, (gpu, node) in zip(leases, gpus, strict=True)
    )
    return [lease.pk for lease in leases]


BENCH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c bench"


def lease_urls(base: str, ids: list[int]) -> list[str]:
    from clusters.models import Lease

    rows = Lease.objects.filter(pk__in=ids).values_list("public_id", "allocations__node__hostname")
    return [f"{base}/nodes/{host}/v1/leases/{public_id}" for public_id, host in rows]


def raw_transition(ids: list[int], sql: str) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(sql, [ids])
        return time.perf_counter() - started


def bench_leases(base: str) -> dict[str, float]:
    """10,000 leases started then ended by the services; the baseline does the same agent work
    (a PUT, then a DELETE of a lease whose keys are in) for 10,000 other leases with a bare client."""
    from django.conf import settings
    from django.utils import timezone

    from clusters.models import Lease
    from clusters.services.lifecycle import EnforceReport, leases_end_due, leases_start_due

    ids = make_leases()
    report = EnforceReport()
    start_s, _ = timed(leases_start_due, now=timezone.now(), report=report)
    assert report.started == LEASES, report
    Lease.objects.filter(pk__in=ids).update(end=timezone.now())
    end_s, ended = timed(leases_end_due, now=timezone.now())
    assert ended == LEASES, ended
    other = make_leases(offset=LEASES)
    urls = lease_urls(base, other)
    body = {"gpu_indices": [0], "ssh_public_keys": [BENCH_KEY]}
    put_s, put_ok = timed(asyncio.run, _bare("PUT", urls, settings.POLL_CONCURRENCY, body))
    delete_s, delete_ok = timed(asyncio.run, _bare("DELETE", urls, settings.POLL_CONCURRENCY))
    assert put_ok == delete_ok == LEASES, (put_ok, delete_ok)
    set_active = "UPDATE clusters_lease SET state = 'active', started_at = now() WHERE id = ANY(%s)"
    set_ended = "UPDATE clusters_lease SET state = 'ended', ended_at = now() WHERE id = ANY(%s)"
    return {
        "start_s": start_s,
        "end_s": end_s,
        "bare_put_s": put_s,
        "bare_delete_s": delete_s,
        "raw_start_sql_s": raw_transition(other, set_active),
        "raw_end_sql_s": raw_transition(other, set_ended),
    }


LATENESS_LEASES = 1000
LATENESS_WINDOW_S = 20.0
LATENESS_LEAD_S = 6.0


class CeleryProcesses:
    """A real worker and beat on the bench database, as deployed (prefork, two processes)."""

    def __init__(self, workdir: Path, *, polling: bool) -> None:
        from django.conf import settings
        from django.db import connection

        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "REDIS_URL": settings.REDIS_URL,
            "EMAIL_URL": "dummy://",
            "POLL_INTERVAL_S": os.environ.get("POLL_INTERVAL_S", "5") if polling else "3600",
            "LEASE_CLEANUP_INTERVAL_S": "3600",
        }
        assert connection.settings_dict["NAME"] in self.env["DATABASE_URL"]

    def start(self) -> None:
        common = [sys.executable, "-m", "celery", "-A", "voltpark"]
        roles = {
            "worker": [
                "worker",
                "--concurrency=2",
                "--without-mingle",
                "--without-gossip",
                "--loglevel=INFO",
            ],
            "beat": ["beat", f"--schedule={self.workdir / 'beat-schedule'}", "--loglevel=INFO"],
        }
        for role, args in roles.items():
            log = open(self.workdir / f"{role}.log", "wb")  # noqa: SIM115
            self.procs.append(
                subprocess.Popen(
                    [*common, *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
                )
            )

    def wait_for_first_sweep(self, timeout: float = 60) -> None:
        log = self.workdir / "worker.log"
        deadline = time.monotonic() + timeout
        while not re.search(r"leases_enforce\[[^]]+\] succeeded", log.read_text(errors="replace")):
            if time.monotonic() > deadline:
                raise RuntimeError("the Celery worker ran no lease sweep:\n" + log.read_text()[-2000:])
            time.sleep(0.2)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def percentiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": statistics.median(values), "p99": cuts[98], "max": max(values)}


def bench_lateness(workdir: Path, *, polling: bool) -> dict[str, Any]:
    """1,000 leases due to start over 20 s; a real worker and beat start them. How late, p50/p99?"""
    import redis
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from clusters.models import Lease
    from nodeagent.protocol import account_for_lease

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {LEASE_TABLES}, accounts_auditentry CASCADE")
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    celery = CeleryProcesses(workdir, polling=polling)
    celery.start()
    try:
        celery.wait_for_first_sweep()
        first = timezone.now() + timedelta(seconds=LATENESS_LEAD_S)
        step = LATENESS_WINDOW_S / LATENESS_LEASES
        starts = [first + timedelta(seconds=i * step) for i in range(LATENESS_LEASES)]
        ids = make_leases(LATENESS_LEASES, starts=starts)
        deadline = time.monotonic() + LATENESS_LEAD_S + LATENESS_WINDOW_S + 60
        active = Lease.objects.filter(pk__in=ids, state="active")
        while active.count() < LATENESS_LEASES and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        celery.stop()
    rows = list(
        Lease.objects.filter(pk__in=ids).values_list(
            "public_id", "start", "started_at", "allocations__node__hostname"
        )
    )
    started = [(s, at) for _, s, at, _ in rows if at is not None]
    keys = []
    for public_id, start, _, host in rows:
        path = workdir / "leases" / host / account_for_lease(str(public_id)) / ".ssh" / "authorized_keys"
        if path.exists():
            keys.append(path.stat().st_mtime - start.timestamp())
    return {
        "started": len(started),
        "started_at": percentiles([(at - s).total_seconds() for s, at in started]),
        "keys_in": percentiles(keys),
    }


def report_lateness(name: str, result: dict[str, Any]) -> None:
    from django.conf import settings

    db, agent = result["started_at"], result["keys_in"]
    print(
        f"lateness, {name} (interval {settings.LEASE_SWEEP_INTERVAL_S}s,"
        f" {result['started']}/{LATENESS_LEASES} started): started_at - start"
        f" p50 {db['p50']:.2f}s p99 {db['p99']:.2f}s max {db['max']:.2f}s; keys on the agent - start"
        f" p50 {agent['p50']:.2f}s p99 {agent['p99']:.2f}s max {agent['max']:.2f}s"
    )


def main() -> None:
    setup_django()
    from django.conf import settings

    from clusters.models import Node
    from clusters.services.fleet import fleet_seed

    reset_database()
    base = f"http://127.0.0.1:{PORT}"
    fleet_seed(nodes=NODES, agent_base=base, agent_token=TOKEN)
    hostnames = list(Node.objects.order_by("hostname").values_list("hostname", flat=True))
    lateness = {}
    # The agent's lease tree on tmpfs where there is one: here one disk stands in for 3,000 machines',
    # and its writeback stalls (other engineers share it) swamped what the platform does.
    shm = "/dev/shm" if Path("/dev/shm").is_dir() and os.environ.get("BENCH_TMPFS", "1") == "1" else None
    with tempfile.TemporaryDirectory(prefix="bench-fleet-", dir=shm) as workdir:
        agent = start_agent(hostnames, Path(workdir))
        try:
            urls = [f"{base}/nodes/{host}/v1/gpus" for host in hostnames]
            sweep = bench_sweep(urls)
            leases = bench_leases(base)
            if os.environ.get("BENCH_LATENESS", "1") == "1":
                lateness["sweeper only"] = bench_lateness(Path(workdir), polling=False)
                lateness["while polling 3,000 nodes"] = bench_lateness(Path(workdir), polling=True)
        finally:
            agent.terminate()
            agent.wait(timeout=10)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"concurrency {settings.POLL_CONCURRENCY}, lease batch {settings.LEASE_SWEEP_BATCH}")
    report_sweep(sweep)
    report_leases(leases)
    for name, result in lateness.items():
        report_lateness(name, result)


def report_sweep(sweep: dict[str, float]) -> None:
    baseline = sweep["bare_fetch_s"] + sweep["raw_update_s"]
    print(
        f"sweep of {NODES} nodes ({NODES * 8} readings, {sweep['samples_per_sweep']} samples stored): "
        f"median {sweep['sweep_s']:.2f}s, best {sweep['sweep_best_s']:.2f}s,"
        f" worst {sweep['sweep_worst_s']:.2f}s of {SWEEPS}; baseline (bare aiohttp GETs"
        f" {sweep['bare_fetch_s']:.2f}s + one raw UPDATE"
        f" {sweep['raw_update_s']:.2f}s) = {baseline:.2f}s; ratio {sweep['sweep_s'] / baseline:.2f}x"
    )


def report_leases(leases: dict[str, float]) -> None:
    for what, method, key, sql in (
        ("starting", "PUT", "start", "start_sql"),
        ("ending", "DELETE", "end", "end_sql"),
    ):
        baseline = leases[f"bare_{method.lower()}_s"] + leases[f"raw_{sql}_s"]
        print(
            f"{what} {LEASES} leases due at once: {leases[f'{key}_s']:.2f}s; baseline (bare aiohttp {method}s"
            f" {leases[f'bare_{method.lower()}_s']:.2f}s + one raw UPDATE {leases[f'raw_{sql}_s']:.2f}s)"
            f" = {baseline:.2f}s; ratio {leases[f'{key}_s'] / baseline:.2f}x"
        )


if __name__ == "__main__":
    main()
