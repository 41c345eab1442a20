"""The soak: the whole platform on this machine for a long run, through faults, checked as it goes.

    python -m bench.soak        (make soak: 3,000 simulated nodes for 30 minutes, figures written to
                                 docs/benchmarks.md; tests/bench/test_soak.py runs a scaled one)

It starts its own PostgreSQL cluster and redis-server (never the machine's shared ones), migrates,
seeds the fleet, then runs gunicorn, two Celery workers per region on the region's queues, a worker
for the shared queues, beat and the simulated agents (bench/soak_platform.py). While clients book,
extend, release and cancel through the API, it injects faults at random into the simulated agents
(agents that stop answering, hang past the deadline, answer slowly but in time, answer garbage, XID
and uncorrectable ECC errors, GPUs that vanish, an agent restarted under a lease), SIGKILLs a Celery
worker every few minutes and restarts it, and restarts PostgreSQL once and Redis once. It fails
(exit 1) on any of: a lease transition lost or done twice, a lease started on an unhealthy node, a
reading of a healthy node older than 15 s, a fault not out of placement within 10 s (or a fault
that should be absorbed taking a node out), a 5xx from the API, an overlap (in the database or on
a node), a process whose memory grows more than 20 % after warm-up.

Settings (environment): SOAK_NODES (3000), SOAK_MINUTES (30), SOAK_CLIENTS (8), SOAK_FAULT_EVERY_S
(3), SOAK_KILL_EVERY_S (180), SOAK_WORKDIR (a new temporary folder), SOAK_WRITE_DOCS (0; make soak
sets 1), SOAK_PORTS (38400-38499, for PostgreSQL, Redis, gunicorn and the agents).
"""

import base64
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.soak_checks import (
    POLL_INTERVAL_S,
    Findings,
    api_checks,
    drain_checks,
    fault_checks,
    freshness_checks,
    lease_checks,
    markdown,
    memory_checks,
    node_side_checks,
    runtime_figures,
    write_docs,
)
from bench.soak_platform import (
    AGENT_TOKEN,
    ROOT,
    SCRAPE_TOKEN,
    Postgres,
    Proc,
    Redis,
    free_port,
    platform_processes,
    wait_for,
    wait_listening,
)
from bench.soak_threads import (
    Client,
    Customer,
    Faults,
    Killer,
    Monitor,
    Plan,
    db_retrying,
    log,
    process_tree,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c soak"


# --- Setting up


def environment(postgres: Postgres, redis: Redis) -> dict[str, str]:
    """The environment of every platform process and of this one."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("SOAK_")},
        "DJANGO_SETTINGS_MODULE": "voltpark.settings",
        "DATABASE_URL": postgres.url,
        "REDIS_URL": redis.url,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "AGENT_TOKEN_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),  # a Fernet key
        # Plain http on loopback, as behind a load balancer that ends TLS.
        "SECURE_SSL_REDIRECT": "false",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "EMAIL_URL": "dummy://",
        "LOG_LEVEL": "WARNING",
        "METRICS_SCRAPE_TOKEN": SCRAPE_TOKEN,
        "BOOKING_MIN_MINUTES": "1",
        "POLL_INTERVAL_S": str(int(POLL_INTERVAL_S)),
        "LEASE_SWEEP_INTERVAL_S": "1",
        "PYTHONPATH": str(ROOT),
    }


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(nodes: int, agent_base: str, clients: int) -> list[Customer]:
    """The fleet, the price book, a staff admin, and each client's organization on invoice terms."""
    from decimal import Decimal

    from accounts.choices import Role
    from accounts.models import Membership, Organization, User
    from accounts.services.auth import user_create
    from accounts.services.ssh_keys import ssh_key_add
    from accounts.services.tokens import api_token_create
    from billing.choices import PaymentTerms
    from billing.models import BillingAccount
    from clusters.services.fleet import fleet_seed

    fleet_seed(nodes=nodes, agent_base=agent_base, agent_token=AGENT_TOKEN, early_stage_share=0.0)
    User.objects.get_or_create(email="staff@soak.example", defaults={"is_staff": True, "password": "!"})
    customers = []
    for i in range(clients):
        user = user_create(email=f"client-{i}@soak.example", email_verified=True)
        org = Organization.objects.create(name=f"Soak {i}", slug=f"soak-{i}", gpu_quota=10**6)
        Membership.objects.create(user=user, organization=org, role=Role.OWNER)
        BillingAccount.objects.update_or_create(
            organization=org,
            defaults={"terms": PaymentTerms.INVOICED, "credit_limit": Decimal("100000000.00")},
        )
        key = ssh_key_add(user=user, public_key=KEY.replace("soak", f"soak-{i}"), name="soak")
        token = api_token_create(user=user, organization=org, name="soak").secret
        customers.append(Customer(token, str(key.public_id)))
    return customers


def simulators_by_region(
    workdir: Path, regions: list[str], ports: str, taken: frozenset[int]
) -> dict[str, tuple[int, Path]]:
    """A port and a hostnames file for each region's simulator; its nodes' agent URLs point there.

    Each port is one that binds, from SOAK_PORTS, not among those `taken` by processes not yet
    started: a port nobody answers on may still be held (CI's run saw a simulator fail to start)."""
    from django.db.models import F, Value
    from django.db.models.functions import Concat

    from clusters.models import Node

    agents, given = {}, set(taken)
    for code in regions:
        port = free_port("SOAK_PORTS", ports, besides=frozenset(given))
        given.add(port)
        nodes = Node.objects.filter(cluster__region__code=code)
        nodes.update(agent_url=Concat(Value(f"http://127.0.0.1:{port}/nodes/"), F("hostname"), Value("/")))
        hosts = workdir / f"hosts-{code}.txt"
        hosts.write_text("\n".join(nodes.order_by("hostname").values_list("hostname", flat=True)) + "\n")
        agents[code] = (port, hosts)
    return agents


def agent_bases() -> dict[str, str]:
    """Each node's simulator, by hostname: where its fault switches are."""
    from clusters.models import Node

    return {host: url.split("/nodes/")[0] for host, url in Node.objects.values_list("hostname", "agent_url")}


def region_codes() -> list[str]:
    from clusters.models import Region

    return list(Region.objects.order_by("code").values_list("code", flat=True))


# --- The run


def run(plan: Plan, workdir: Path, leases: Path) -> dict[str, Any]:
    ports = os.environ.get("SOAK_PORTS", "38400-38499")
    postgres = Postgres(workdir, free_port("SOAK_PORTS", ports))
    postgres.init()
    redis = Redis(workdir, free_port("SOAK_PORTS", ports))
    redis.start()
    web_port = free_port("SOAK_PORTS", ports)
    env = environment(postgres, redis)
    procs: dict[str, Proc] = {}
    found = Findings()
    stop = threading.Event()
    try:
        log(f"migrating and seeding {plan.nodes} nodes (PostgreSQL :{postgres.port}, Redis :{redis.port})")
        setup_django(env)
        customers = seed(plan.nodes, "", plan.clients)
        regions = region_codes()
        agents = simulators_by_region(workdir, regions, ports, frozenset({web_port}))
        procs = platform_processes(
            workdir=workdir, leases=leases, env=env, regions=regions, web_port=web_port, agents=agents
        )
        for proc in procs.values():
            proc.start()
        listening = {"web": web_port, **{f"agents-{code}": port for code, (port, _) in agents.items()}}
        wait_listening(procs, listening, 120)
        wait_for(lambda: first_sweep_done(plan.nodes), 180, "a first poll of every node")
        return soak(
            plan,
            workdir,
            leases,
            postgres,
            redis,
            procs,
            customers,
            regions,
            found,
            stop,
            web_port,
            agent_bases(),
        )
    finally:
        # Stopping everything it started must not be cut short by a second Ctrl-C or SIGTERM.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop.set()
        for proc in procs.values():
            proc.stop()
        redis.stop()
        postgres.stop()


def scrape_metrics(web: str) -> str:
    import httpx

    headers = {"Authorization": f"Bearer {SCRAPE_TOKEN}"}
    return httpx.get(f"{web}/metrics", headers=headers, timeout=60).text


def first_sweep_done(nodes: int) -> bool:
    from clusters.models import GPU

    return (
        db_retrying(lambda: GPU.objects.filter(read_at__isnull=False).count(), "read of the GPUs")
        >= nodes * 8
    )


def soak(
    plan, workdir, leases, postgres, redis, procs, customers, regions, found, stop, web_port, agent_bases
):
    web = f"http://127.0.0.1:{web_port}"
    began = time.time()
    faults = Faults(plan, agent_bases, found, stop, leases)
    clients = [Client(n, c, web, regions, found, stop) for n, c in enumerate(customers)]
    threads = [
        *clients,
        faults,
        Killer(plan, procs, found, stop),
        Monitor(found, stop, faults, leases, web, process_tree(procs, postgres, redis)),
    ]
    for thread in threads:
        thread.start()
    log(f"soaking {plan.seconds / 60:.0f} min: {plan.clients} clients, a fault every ~{plan.fault_every_s}s")
    for at, what, restart in sorted(
        [
            (plan.postgres_restart_at, "postgres", postgres.restart),
            (plan.redis_restart_at, "redis", redis.restart),
        ]
    ):
        stop.wait(max(0.0, began + at - time.time()))
        started = time.time()
        restart()
        found.outages.append((what, started, time.time()))
        log(f"restarted {what} in {time.time() - started:.1f}s")
    stop.wait(max(0.0, began + plan.seconds - time.time()))
    stop.set()
    for thread in [*clients, *faults.threads]:
        thread.join(timeout=60)
    log("stopped clients and faults; letting the sweeps finish what is due")
    time.sleep(45)
    report = {
        "plan": asdict(plan),
        "seconds": round(time.time() - began),
        "outages": [(what, round(end - start, 1)) for what, start, end in found.outages],
        "kills": len(found.kills),
    }
    failures: list[str] = []
    leases_found = db_retrying(lambda: lease_checks(found), "lease checks")
    failures += leases_found.pop("failures")
    failures += db_retrying(lambda: node_side_checks(leases), "node-side checks")
    failures += [f"node-side overlap: {o}" for o in found.node_overlaps]
    failures += db_retrying(lambda: drain_checks(found), "drain checks")
    report["runtime"] = runtime_figures(scrape_metrics(web))
    for name, check in (("api", api_checks), ("faults", fault_checks), ("freshness", freshness_checks)):
        more, figures = check(found)
        failures += more
        report[name] = figures
    more, report["memory"] = memory_checks(found, began + plan.warm_up_s)
    failures += more
    report.update(leases=leases_found, node_checks=found.node_checks, problems=found.problems[:20])
    report["failures"] = failures
    (workdir / "report.json").write_text(json.dumps(report, indent=1, default=str))
    return report


def main() -> int:
    plan = Plan.from_env()
    workdir = Path(os.environ.get("SOAK_WORKDIR") or tempfile.mkdtemp(prefix="voltpark-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # The agents' lease accounts on tmpfs where there is one: here one disk stands in for 3,000 nodes'.
    shm = Path("/dev/shm")
    leases = Path(tempfile.mkdtemp(prefix="voltpark-soak-leases-", dir=shm if shm.is_dir() else None))
    log(f"work folder {workdir}, lease accounts in {leases}")
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        report = run(plan, workdir, leases)
    finally:
        shutil.rmtree(leases, ignore_errors=True)
    text = markdown(report)
    print(text)
    if os.environ.get("SOAK_WRITE_DOCS") == "1":
        write_docs(text)
    return 1 if report["failures"] else 0


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    sys.exit(main())
