"""The soak's threads (bench/soak.py runs them): API clients booking, extending, releasing and
cancelling; the fault injector and its episodes; the worker killer; the monitor of readings' age,
the nodes' lease accounts, memory and /metrics. Also the plan of a run and what they share."""

import contextlib
import json
import os
import random
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from bench.soak_checks import (
    DETECT_WITHIN_S,
    RECOVERY_S,
    STALE_AFTER_S,
    Episode,
    Findings,
)
from bench.soak_platform import (
    AGENT_TOKEN,
    SCRAPE_TOKEN,
    Postgres,
    Proc,
    Redis,
)

SIZES = (1, 1, 2, 4, 8, 8, 16)
# Faults that must take the node out of placement within DETECT_WITHIN_S, and those it must absorb.
DRAINING: dict[str, dict[str, Any]] = {
    "stop": {"fault": "refuse"},
    "hang": {"fault": "slow", "seconds": 30},
    "garbage": {"fault": "garbage"},
    "xid": {"fault": "xid", "code": 79},
    "ecc": {"fault": "ecc", "count": 2},
    "gpu_lost": {"fault": "gpu_lost"},
}
ABSORBED: dict[str, dict[str, Any]] = {
    "slow": {"fault": "slow", "seconds": 0.4, "answers": 3},
    "restart": {"fault": "restart", "seconds": 0.1},
}
GPU_FAULTS = {"xid", "ecc", "gpu_lost"}


@dataclass(frozen=True)
class Plan:
    """How big and how long, and when the one-off restarts fall."""

    nodes: int
    seconds: float
    clients: int
    fault_every_s: float
    kill_every_s: float

    @classmethod
    def from_env(cls) -> "Plan":
        return cls(
            nodes=int(os.environ.get("SOAK_NODES", "3000")),
            seconds=float(os.environ.get("SOAK_MINUTES", "30")) * 60,
            clients=int(os.environ.get("SOAK_CLIENTS", "8")),
            fault_every_s=float(os.environ.get("SOAK_FAULT_EVERY_S", "3")),
            kill_every_s=float(os.environ.get("SOAK_KILL_EVERY_S", "180")),
        )

    @property
    def postgres_restart_at(self) -> float:
        return self.seconds * 0.15

    @property
    def redis_restart_at(self) -> float:
        return self.seconds * 0.3

    @property
    def warm_up_s(self) -> float:
        """Memory is measured from here: after both restarts and their recovery."""
        return self.seconds * 0.3 + RECOVERY_S + 10


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", flush=True)


def db_retrying(fn, what: str, deadline_s: float = 120):
    """Run a database read or write of the soak's own, through a restart of PostgreSQL."""
    from django.db import Error, connection

    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return fn()
        except Error as exc:
            connection.close()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the soak's own {what} kept failing: {exc}") from exc
            time.sleep(0.5)


# --- Clients


@dataclass
class Customer:
    """A client's organization, as the API knows it: its bearer token and SSH key."""

    token: str
    key_id: str


class Client(threading.Thread):
    """One organization's client: books, extends, releases and cancels through the API, at random."""

    def __init__(
        self,
        n: int,
        customer: Customer,
        base: str,
        regions: list[str],
        found: Findings,
        stop: threading.Event,
    ):
        super().__init__(name=f"client-{n}", daemon=True)
        import httpx

        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {customer.token}"}, timeout=60
        )
        self.key_id = customer.key_id
        self.rng = random.Random(n)
        self.regions = regions
        self.found = found
        self.stop = stop
        self.leases: dict[str, dict[str, Any]] = {}
        self.extended: set[str] = set()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        import httpx

        started = time.time()
        try:
            answer = self.http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            self.found.calls.append((started, f"{method} {_kind(path)}", 0, time.time() - started))
            self.found.problems.append(f"{time.strftime('%H:%M:%S')} {method} {path}: no answer ({exc!r})")
            return 0, None
        self.found.calls.append(
            (started, f"{method} {_kind(path)}", answer.status_code, time.time() - started)
        )
        try:
            return answer.status_code, answer.json()
        except ValueError:
            return answer.status_code, None

    def run(self) -> None:
        while not self.stop.is_set():
            live = [lease for lease in self.leases.values() if lease["state"] in ("scheduled", "active")]
            if len(live) < 3 or self.rng.random() < 0.2:
                self.book()
            else:
                self.change(self.rng.choice(live))
            self.refresh()
            self.stop.wait(self.rng.uniform(0.3, 1.5))

    def book(self) -> None:
        from django.utils import timezone

        body: dict[str, Any] = {"region": self.rng.choice(self.regions), "gpus": self.rng.choice(SIZES)}
        body["ssh_key_ids"] = [self.key_id]
        if self.rng.random() < 0.5:
            body["kind"] = "on_demand"
        else:
            # Whole minutes (BOOKING_TIME_STEP): leases of many clients start and end at one instant.
            start = (timezone.now() + timedelta(seconds=70)).replace(second=0, microsecond=0)
            end = start + timedelta(minutes=self.rng.randint(1, 3))
            body.update(kind="reserved", start=start.isoformat(), end=end.isoformat())
        status, lease = self.call("POST", "/api/v1/leases/", body)
        if status == 201:
            self.leases[lease["id"]] = lease

    def change(self, lease: dict[str, Any]) -> None:
        from datetime import datetime

        lease_id = lease["id"]
        if lease["kind"] == "reserved" and lease_id not in self.extended and lease["end"]:
            end = datetime.fromisoformat(lease["end"]) + timedelta(minutes=1)
            self.extended.add(lease_id)
            status, answer = self.call("POST", f"/api/v1/leases/{lease_id}/extend/", {"end": end.isoformat()})
        elif lease["state"] == "scheduled" and self.rng.random() < 0.3:
            status, answer = self.call("POST", f"/api/v1/leases/{lease_id}/cancel/")
        elif lease["state"] == "active":
            status, answer = self.call("POST", f"/api/v1/leases/{lease_id}/release/")
        else:
            return
        if status == 200:
            self.leases[lease_id] = answer

    def refresh(self) -> None:
        for lease_id, lease in list(self.leases.items()):
            if lease["state"] not in ("scheduled", "active"):
                del self.leases[lease_id]
            elif self.rng.random() < 0.3:
                status, answer = self.call("GET", f"/api/v1/leases/{lease_id}/")
                if status == 200:
                    self.leases[lease_id] = answer


def _kind(path: str) -> str:
    """A path with the lease id taken out, to count calls by operation."""
    parts = path.strip("/").split("/")
    return "/".join("{id}" if len(p) == 36 else p for p in parts)


# --- Faults


class Faults(threading.Thread):
    """Injects a fault into a random simulated agent every SOAK_FAULT_EVERY_S (jittered), each followed
    by its own thread: watched until out of placement (or seen to stay in), then cleared and undrained."""

    def __init__(
        self, plan: Plan, agent_bases: dict[str, str], found: Findings, stop: threading.Event, leases: Path
    ):
        super().__init__(name="faults", daemon=True)
        self.plan = plan
        self.agent_bases = agent_bases  # hostname -> its region's simulator
        self.found = found
        self.stop = stop
        self.leases = leases
        self.busy: set[str] = set()
        self.lock = threading.Lock()
        self.rng = random.Random(7)
        self.threads: list[threading.Thread] = []

    def run(self) -> None:
        kinds = list(DRAINING) + list(ABSORBED)
        while not self.stop.wait(self.rng.uniform(0.5, 1.5) * self.plan.fault_every_s):
            if self.found.in_outage(time.time()):
                continue  # a fault during a restart would measure the restart, not the detection
            thread = threading.Thread(target=self.episode, args=(self.rng.choice(kinds),), daemon=True)
            thread.start()
            self.threads.append(thread)

    def pick(self, kind: str) -> tuple[str, str | None] | None:
        from clusters.models import Lease, Node

        with self.lock:
            if kind == "restart":
                rows = db_retrying(
                    lambda: list(
                        Lease.objects.filter(state="active", allocations__is_live=True)
                        .values_list("allocations__node__hostname", "public_id")
                        .distinct()[:200]
                    ),
                    "pick of a leased node",
                )
                rows = [(host, str(lease)) for host, lease in rows if host not in self.busy]
                choice = self.rng.choice(rows) if rows else None
            else:
                available = set(
                    db_retrying(
                        lambda: list(
                            Node.objects.filter(state="available").values_list("hostname", flat=True)
                        ),
                        "pick of a node",
                    )
                )
                hosts = sorted(available - self.busy)
                choice = (self.rng.choice(hosts), None) if hosts else None
            if choice is not None:
                self.busy.add(choice[0])
            return choice

    def episode(self, kind: str) -> None:
        picked = self.pick(kind)
        if picked is None:
            return
        host, lease_id = picked
        try:
            self._episode(kind, host, lease_id)
        except Exception as exc:  # noqa: BLE001  # the soak reports it and goes on
            self.found.problems.append(f"fault {kind} on {host}: the soak's own step failed: {exc!r}")
        finally:
            with self.lock:
                self.busy.discard(host)

    def _episode(self, kind: str, host: str, lease_id: str | None) -> None:
        body = dict(DRAINING.get(kind) or ABSORBED[kind])
        if kind in GPU_FAULTS:
            body["gpu_index"] = self.rng.randrange(8)
        # The fault begins when it is sent: the simulator applies it before it answers, and a poll may
        # take the node out before that answer arrives (seconds, on a loaded machine).
        sent = time.time()
        self.fault(host, "POST", body)
        episode = Episode(kind, host, sent, expect_drain=kind in DRAINING)
        self.found.episodes.append(episode)
        seen = self.watch(host, within=DETECT_WITHIN_S + 5 if episode.expect_drain else 12, until_out=True)
        if seen is not None:
            episode.drained = True
            episode.detected_s = seen - episode.at
        if kind == "restart" and lease_id is not None:
            episode.note = self.lease_kept(host, lease_id)
        self.stop.wait(self.rng.uniform(2, 6))
        self.fault(host, "DELETE", None)
        if episode.drained:
            self.undrain(host)
        episode.ended = time.time()

    def fault(self, host: str, method: str, body: dict[str, Any] | None) -> None:
        import httpx

        url = f"{self.agent_bases[host]}/nodes/{host}/v1/simulate/faults"
        answer = httpx.request(
            method, url, json=body, headers={"Authorization": f"Bearer {AGENT_TOKEN}"}, timeout=10
        )
        answer.raise_for_status()

    def watch(self, host: str, *, within: float, until_out: bool) -> float | None:
        """When the node was first seen out of placement (unhealthy), or None within `within` seconds."""
        from clusters.models import Node

        deadline = time.time() + within
        while time.time() < deadline:
            state = db_retrying(lambda: Node.objects.get(hostname=host).state, "read of a node's state")
            if state != "available":
                return time.time()
            time.sleep(0.2)
        return None

    def lease_kept(self, host: str, lease_id: str) -> str:
        """After its agent restarted, the lease's account is still there, read back from disk."""
        from nodeagent.protocol import account_for_lease

        time.sleep(1.0)
        record = self.leases / host / account_for_lease(lease_id) / "lease.json"
        try:
            state = json.loads(record.read_text())["state"]
        except (OSError, ValueError, KeyError):
            return "lease record missing after the restart"
        return "" if state in ("active", "revoked") else f"lease record in state {state}"

    def undrain(self, host: str) -> None:
        """Put the node back once its agent answers clean; again if a poll read mid-clear drains it."""
        from accounts.models import User
        from clusters.models import Node
        from clusters.services.health import node_undrain
        from core.refusals import Refused

        staff = db_retrying(lambda: User.objects.get(email="staff@soak.example"), "read of the staff user")
        for _ in range(3):
            time.sleep(6)  # a poll of the cleared agent, so the next reading is clean
            node = db_retrying(lambda: Node.objects.get(hostname=host), "read of a node")
            if node.state == "available":
                return
            with contextlib.suppress(Refused):  # undrained meanwhile
                db_retrying(
                    partial(node_undrain, node=node, actor=staff, reason="soak: fault cleared"), "undrain"
                )


# --- Worker kills and restarts


class Killer(threading.Thread):
    """SIGKILLs a random region worker every SOAK_KILL_EVERY_S (jittered) and starts it again 3-15 s later."""

    def __init__(self, plan: Plan, procs: dict[str, Proc], found: Findings, stop: threading.Event):
        super().__init__(name="killer", daemon=True)
        self.plan, self.procs, self.found, self.stop = plan, procs, found, stop
        self.rng = random.Random(11)

    def run(self) -> None:
        workers = sorted(
            name for name in self.procs if name.startswith("worker-") and name != "worker-shared"
        )
        while not self.stop.wait(self.rng.uniform(0.7, 1.3) * self.plan.kill_every_s):
            proc = self.procs[self.rng.choice(workers)]
            proc.kill()
            down = self.rng.uniform(3, 15)
            self.stop.wait(down)
            proc.start()
            self.found.kills.append((proc.name, proc.killed[-1], time.time()))
            log(f"killed {proc.name} (SIGKILL), started again after {down:.0f}s")


# --- Watching


class Monitor(threading.Thread):
    """Every 2 s the readings' age; every 10 s the lease accounts on every simulated node; every 15 s
    each process's memory and a scrape of /metrics."""

    def __init__(self, found: Findings, stop: threading.Event, faults: Faults, leases: Path, web: str, pids):
        super().__init__(name="monitor", daemon=True)
        self.found, self.stop, self.faults, self.leases, self.web, self.pids = (
            found,
            stop,
            faults,
            leases,
            web,
            pids,
        )
        self.last_poll: dict[tuple[str, str], float] = {}

    def run(self) -> None:
        tick = 0
        while not self.stop.wait(2.0):
            tick += 1
            self.freshness()
            self.poll_gaps()
            if tick % 5 == 0:
                self.node_accounts()
            if tick % 8 == 0:
                self.memory()
                self.scrape()

    def poll_gaps(self) -> None:
        """The time between one region's successive polls, from the platform's own figures (Redis)."""
        import redis

        from clusters.selectors.runtime import KEY_SWEEP_LAST

        try:
            last: dict[bytes, bytes] = redis.Redis.from_url(os.environ["REDIS_URL"]).hgetall(KEY_SWEEP_LAST)  # type: ignore[assignment]
        except redis.RedisError:
            return
        for key, value in last.items():
            kind, region = key.decode().split("|")
            finished = float(value.split()[2])
            previous = self.last_poll.get((kind, region))
            if kind == "poll" and previous is not None and finished > previous:
                self.found.poll_gaps.append((region, previous, finished - previous))
            self.last_poll[(kind, region)] = finished

    def freshness(self) -> None:
        from django.db import Error, connection

        recently_faulted = {
            e.host for e in self.found.episodes if not e.ended or time.time() - e.ended < STALE_AFTER_S
        }
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT n.hostname, extract(epoch FROM now() - min(g.read_at)) FROM clusters_gpu g"
                    " JOIN clusters_node n ON n.id = g.node_id WHERE n.state = 'available'"
                    " GROUP BY n.hostname ORDER BY 2 DESC LIMIT 200"
                )
                rows = cursor.fetchall()
        except Error:
            connection.close()
            return
        now = time.time()
        self.found.freshness_checks += 1
        for host, age in rows:
            if host in recently_faulted or age is None:
                continue
            age = float(age)
            if age <= STALE_AFTER_S:
                break
            where = self.found.stale_in_outages if self.found.in_outage(now) else self.found.stale
            where.append((now, host, age))
        ages = [float(age) for host, age in rows if age is not None and host not in recently_faulted]
        if ages and not self.found.in_outage(now):
            self.found.max_age_s = max(self.found.max_age_s, ages[0])

    def node_accounts(self) -> None:
        """No GPU of a node held by two lease accounts at once (the agent's own records)."""
        self.found.node_checks += 1
        for node in self.leases.iterdir() if self.leases.exists() else []:
            holders: dict[int, str] = {}
            for record in node.glob("*/lease.json"):
                try:
                    lease = json.loads(record.read_text())
                except (OSError, ValueError):
                    continue
                if lease.get("state") != "active":
                    continue
                for gpu in lease["gpu_indices"]:
                    if gpu in holders:
                        both = f"{holders[gpu]} and {lease['lease_id']}"
                        self.found.node_overlaps.append(
                            f"{time.strftime('%H:%M:%S')} {node.name} GPU {gpu}: {both}"
                        )
                    holders[gpu] = lease["lease_id"]

    def memory(self) -> None:
        now = time.time()
        for pid, name in self.pids():
            size = anonymous_bytes(pid)
            if size is not None:
                self.found.memory.setdefault(pid, []).append((now, name, size))

    def scrape(self) -> None:
        import httpx

        try:
            answer = httpx.get(
                f"{self.web}/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"}, timeout=30
            )
            self.found.scrapes.append((time.time(), answer.status_code))
        except httpx.HTTPError:
            self.found.scrapes.append((time.time(), 0))


def anonymous_bytes(pid: int) -> int | None:
    """A process's private anonymous memory (its heap): shared memory, such as PostgreSQL's buffers,
    and mapped files are left out, so a process touching more of them is not counted as growing."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Anonymous:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def children_by_parent() -> dict[int, list[int]]:
    """Every process's children, from /proc (each /proc/<pid>/stat names its parent)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name, in parentheses, may hold spaces: the fields after it are fixed.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def process_tree(procs: dict[str, Proc], postgres: Postgres, redis: Redis):
    """Every (pid, name) of the platform's processes and their children, for the memory watch."""

    def tree(pid: int, name: str, children: dict[int, list[int]]) -> list[tuple[int, str]]:
        found, todo = [(pid, name)], list(children.get(pid, []))
        while todo:
            child = todo.pop()
            found.append((child, f"{name} child"))
            todo += children.get(child, [])
        return found

    def pids() -> list[tuple[int, str]]:
        children = children_by_parent()
        roots = [(proc.popen.pid, name) for name, proc in procs.items() if proc.alive and proc.popen]
        roots += [(pid, "postgres") for pid in postgres.pids()]
        if redis.process is not None and redis.process.poll() is None:
            roots.append((redis.process.pid, "redis"))
        return [found for pid, name in roots for found in tree(pid, name, children)]

    return pids
