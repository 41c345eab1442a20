"""The soak's findings and what it checks at the end (bench/soak.py runs it): transitions lost or done
twice, leases started on unhealthy nodes, overlaps in the database and on the nodes, faults detected
late, 5xx answers, stale readings, memory growth; and the report in docs/benchmarks.md."""

import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.docs import section_write

STALE_AFTER_S = 15.0
DETECT_WITHIN_S = 10.0
MEMORY_GROWTH = 0.20
# Below this many bytes a growth is noise (a 6 MiB redis-server growing by 2 MiB is not a leak).
MEMORY_FLOOR = 4 * 1024 * 1024
# After a restart of PostgreSQL or Redis, how long the platform may take to catch up (a poll interval,
# a sweep, and the ticks lost while the broker was away).
RECOVERY_S = 20.0
POLL_INTERVAL_S = 5.0  # as the soak runs the platform (bench/soak.py environment)


@dataclass
class Episode:
    """One injected fault: where, when, and when (if) the node was seen out of placement."""

    kind: str
    host: str
    at: float
    expect_drain: bool
    detected_s: float | None = None
    drained: bool = False
    note: str = ""
    ended: float = 0.0


@dataclass
class Findings:
    """Everything the soak saw, shared by its threads (appends are atomic in CPython)."""

    calls: list[tuple[float, str, int, float]] = field(default_factory=list)
    outages: list[tuple[str, float, float]] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    kills: list[tuple[str, float, float]] = field(default_factory=list)
    stale: list[tuple[float, str, float]] = field(default_factory=list)
    stale_in_outages: list[tuple[float, str, float]] = field(default_factory=list)
    freshness_checks: int = 0
    max_age_s: float = 0.0
    node_overlaps: list[str] = field(default_factory=list)
    node_checks: int = 0
    memory: dict[int, list[tuple[float, str, int]]] = field(default_factory=dict)
    scrapes: list[tuple[float, int]] = field(default_factory=list)
    poll_gaps: list[tuple[str, float, float]] = field(default_factory=list)  # region, from, seconds
    problems: list[str] = field(default_factory=list)

    def in_outage(self, at: float, until: float | None = None) -> bool:
        """Whether [at, until] meets a restart of PostgreSQL or Redis, or the recovery after it."""
        return any(at <= end + RECOVERY_S and (until or at) >= start for _, start, end in self.outages)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    cut = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"n": len(values), "p50": statistics.median(ordered), "p99": cut, "max": ordered[-1]}


def lease_checks(found: Findings) -> dict[str, Any]:
    """Transitions lost or done twice, leases started on unhealthy nodes, overlaps, lateness."""
    from django.db import connection
    from django.utils import timezone

    from clusters.models import Lease

    failures: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT object_id, action, count(*) FROM accounts_auditentry WHERE object_type = 'Lease'"
            " AND action IN ('lease.active', 'lease.ended', 'lease.failed', 'lease.cancelled')"
            " GROUP BY object_id, action HAVING count(*) > 1"
        )
        failures += [f"lease {lease} moved to {action} {n} times" for lease, action, n in cursor.fetchall()]
        cursor.execute(
            "SELECT count(*) FROM clusters_allocation a JOIN clusters_allocation b ON a.gpu_id = b.gpu_id"
            " AND a.id < b.id AND a.is_live AND b.is_live AND a.period && b.period"
        )
        overlaps = cursor.fetchone()[0]
        if overlaps:
            failures.append(f"{overlaps} overlapping live allocations in the database")
        # A node is out of placement from its failure (the audit row written in the failing transaction,
        # after it has waited for any lease a sweeper holds) until staff undrain it. The nodes a lease
        # started on are its live allocations: a re-placed lease's earlier ones are not.
        cursor.execute(
            "SELECT DISTINCT l.public_id, n.hostname FROM clusters_lease l"
            " JOIN clusters_allocation a ON a.lease_id = l.id AND a.is_live"
            " JOIN clusters_node n ON n.id = a.node_id"
            " JOIN accounts_auditentry f ON f.action = 'node.health_failed' AND f.object_type = 'Node'"
            "   AND f.object_id = n.public_id::text AND f.at < l.started_at"
            " WHERE l.started_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM accounts_auditentry u"
            "   WHERE u.action = 'node.undrained' AND u.object_type = 'Node'"
            "   AND u.object_id = n.public_id::text AND u.at > f.at AND u.at <= l.started_at)"
        )
        failures += [
            f"lease {lease} started on {host} while it was unhealthy" for lease, host in cursor.fetchall()
        ]
    now = timezone.now()
    grace = timedelta(seconds=30)
    from django.conf import settings

    start_lost = Lease.objects.filter(
        state="scheduled", start__lt=now - timedelta(seconds=settings.LEASE_START_TIMEOUT_S) - grace
    )
    end_lost = Lease.objects.filter(state="active", end__lt=now - grace)
    failures += [
        f"lease {lease.public_id} never started (due {lease.start:%H:%M:%S})" for lease in start_lost
    ]
    failures += [f"lease {lease.public_id} never ended (due {lease.end:%H:%M:%S})" for lease in end_lost]
    started, ended = [], []
    for kind, start, started_at, end, ended_at in Lease.objects.values_list(
        "kind", "start", "started_at", "end", "ended_at"
    ):
        if kind == "reserved" and started_at is not None and not found.in_outage(start.timestamp()):
            started.append((started_at - start).total_seconds())
        if (
            ended_at is not None
            and end is not None
            and started_at is not None
            and not found.in_outage(end.timestamp())
        ):
            ended.append((ended_at - end).total_seconds())
    states = Counter(Lease.objects.values_list("state", flat=True))
    return {
        "failures": failures,
        "start_lateness": percentiles(started),
        "end_lateness": percentiles(ended),
        "states": dict(states),
    }


def node_side_checks(leases: Path) -> list[str]:
    """Every lease ended in the database is revoked on its nodes; every active one is installed on the
    nodes it holds now (not those a re-placed lease left before it started)."""
    from django.db.models import Q

    from clusters.models import Allocation
    from nodeagent.protocol import account_for_lease

    failures = []
    held = Q(lease__state="active", is_live=True) | Q(lease__state__in=("ended", "failed"))
    rows = (
        Allocation.objects.filter(held, node__state="available")
        .values_list("lease__public_id", "lease__state", "node__hostname")
        .distinct()
    )
    for public_id, state, host in rows:
        record = leases / host / account_for_lease(str(public_id)) / "lease.json"
        try:
            on_node = json.loads(record.read_text())["state"]
        except (OSError, ValueError, KeyError):
            on_node = None
        if state == "active" and on_node != "active":
            failures.append(f"lease {public_id} is active but not installed on {host} ({on_node})")
        if state in ("ended", "failed") and on_node == "active":
            failures.append(f"lease {public_id} is {state} but still installed on {host}")
    return failures


def memory_checks(found: Findings, warm_up_end: float) -> tuple[list[str], dict[str, Any]]:
    failures, compared = [], 0
    worst = (0.0, "")
    for pid, samples in found.memory.items():
        base = [s for s in samples if s[0] >= warm_up_end]
        if len(base) < 2 or samples[0][0] > warm_up_end:
            continue  # started after the warm-up (a restarted worker): no baseline of its own
        compared += 1
        (_, name, first), (_, _, last) = base[0], base[-1]
        growth = (last - first) / first if first else 0.0
        if growth > worst[0]:
            worst = (growth, f"{name} (pid {pid}) {first / 2**20:.0f} -> {last / 2**20:.0f} MiB")
        if growth > MEMORY_GROWTH and last - first > MEMORY_FLOOR:
            failures.append(
                f"{name} (pid {pid}) grew {growth:.0%}: {first / 2**20:.0f} -> {last / 2**20:.0f} MiB"
            )
    return failures, {"compared": compared, "worst": f"{worst[0]:.1%} {worst[1]}"}


def api_checks(found: Findings) -> tuple[list[str], dict[str, Any]]:
    failures = []
    # A 503 (core/unavailable.py) is the answer while PostgreSQL or Redis restarts; any other 5xx, or no
    # answer at all, is a failure whenever it comes.
    errors = [(at, what, status, s) for at, what, status, s in found.calls if status >= 500 or status == 0]
    outside = [e for e in errors if not (e[2] == 503 and found.in_outage(e[0], e[0] + e[3]))]
    failures += [
        f"{time.strftime('%H:%M:%S', time.localtime(at))} {what} answered {status}"
        for at, what, status, _ in outside
    ]
    statuses = Counter(status for _, _, status, _ in found.calls)
    latency = percentiles([seconds for _, _, status, seconds in found.calls if status and status < 500])
    scrapes_bad = [s for s in found.scrapes if s[1] != 200 and not found.in_outage(s[0])]
    failures += [
        f"/metrics answered {status} at {time.strftime('%H:%M:%S', time.localtime(at))}"
        for at, status in scrapes_bad
    ]
    return failures, {
        "calls": len(found.calls),
        "statuses": dict(sorted(statuses.items())),
        "errors_in_restarts": len(errors) - len(outside),
        "latency_s": latency,
        "scrapes": len(found.scrapes),
    }


def fault_checks(found: Findings) -> tuple[list[str], dict[str, Any]]:
    """Faults out of placement within DETECT_WITHIN_S, absorbed ones not. A fault whose detection
    overlapped a SIGKILL of one of its region's workers is reported apart: the poll in flight died with
    the worker, so the next one (an interval later) is the first to see it. So is one sent just before
    PostgreSQL or Redis restarted, whose detection met the restart (none is sent in one): the write
    that takes the node out waits for the database; it must still be taken out."""
    failures: list[str] = []
    detected: list[float] = []
    during_kills: list[float] = []
    during_restarts: list[float] = []
    regions = _regions_of({e.host for e in found.episodes})
    for e in found.episodes:
        late = e.expect_drain and (e.detected_s is None or e.detected_s > DETECT_WITHIN_S)
        killed = _worker_killed_meanwhile(found, regions.get(e.host, ""), e)
        restarted = found.in_outage(e.at, e.at + (e.detected_s or DETECT_WITHIN_S))
        if late and restarted and not killed and e.detected_s is not None:
            during_restarts.append(e.detected_s)
        elif late and not killed:
            seen = "never" if e.detected_s is None else f"after {e.detected_s:.1f}s"
            failures.append(f"fault {e.kind} on {e.host} out of placement {seen}")
        if not e.expect_drain and e.drained:
            failures.append(f"fault {e.kind} on {e.host} (to be absorbed) took the node out")
        if e.note:
            failures.append(f"fault {e.kind} on {e.host}: {e.note}")
        if e.detected_s is not None and e.expect_drain and not (late and restarted and not killed):
            (during_kills if killed else detected).append(e.detected_s)
    slowest = sorted((e for e in found.episodes if e.detected_s), key=lambda e: -(e.detected_s or 0))[:5]
    return failures, {
        "episodes": dict(Counter(e.kind for e in found.episodes)),
        "detection_s": percentiles(detected),
        "detection_during_worker_kills_s": percentiles(during_kills),
        "late_during_restarts_s": percentiles(during_restarts),
        "slowest": [
            (e.kind, e.host, time.strftime("%H:%M:%S", time.localtime(e.at)), round(e.detected_s or 0, 2))
            for e in slowest
        ],
        "longest_poll_gaps": [
            (region, time.strftime("%H:%M:%S", time.localtime(at)), round(gap, 1))
            for region, at, gap in sorted(found.poll_gaps, key=lambda g: -g[2])[:8]
        ],
        "all": [
            (e.kind, e.host, time.strftime("%H:%M:%S", time.localtime(e.at)), e.detected_s)
            for e in found.episodes
        ],
    }


def _regions_of(hosts: set[str]) -> dict[str, str]:
    from clusters.models import Node

    rows = Node.objects.filter(hostname__in=hosts).values_list("hostname", "cluster__region__code")
    return dict(rows)


def _worker_killed_meanwhile(found: Findings, region: str, e: Episode) -> bool:
    """A worker of the region killed between one poll interval before the fault and its detection."""
    until = e.at + (e.detected_s if e.detected_s is not None else DETECT_WITHIN_S + 5)
    return any(
        name.startswith(f"worker-{region}-") and e.at - POLL_INTERVAL_S <= killed <= until
        for name, killed, _ in found.kills
    )


def drain_checks(found: Findings) -> list[str]:
    """No node taken out of placement without a fault injected into it (a false alarm: a flap)."""
    from clusters.models import HealthEvent

    failures = []
    events = HealthEvent.objects.values_list("node__hostname", "started_at", "kind", "detail")
    for host, started, kind, detail in events:
        at = started.timestamp()
        if not any(
            e.host == host and e.at - 1 <= at <= (e.ended or time.time()) + STALE_AFTER_S
            for e in found.episodes
        ):
            failures.append(f"{host} taken out at {started:%H:%M:%S} without a fault: {kind} ({detail})")
    return failures


def runtime_figures(metrics_text: str) -> dict[str, dict[str, float]]:
    """The platform's own sweep figures from its /metrics (clusters/views/metrics.py), per kind and region."""
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name.startswith("voltpark_sweep_") and "kind" in sample.labels:
                key = (
                    sample.name,
                    sample.labels["kind"],
                    sample.labels["region"],
                    sample.labels.get("le", ""),
                )
                values[key] = sample.value
    figures = {}
    for name, kind, region, _ in list(values):
        if name != "voltpark_sweep_duration_seconds_count":
            continue
        count = values[(name, kind, region, "")]
        duration = values.get(("voltpark_sweep_duration_seconds_sum", kind, region, ""), 0.0)
        lateness = values.get(("voltpark_sweep_lateness_seconds_sum", kind, region, ""), 0.0)
        in_time = values.get(("voltpark_sweep_lateness_seconds_bucket", kind, region, "2.0"), count)
        figures[f"{kind} {region}"] = {
            "sweeps": count,
            "mean_duration_s": round(duration / count, 3) if count else 0.0,
            "mean_lateness_s": round(lateness / count, 3) if count else 0.0,
            "begun_over_2s_late": count - in_time,
        }
    return dict(sorted(figures.items()))


def freshness_checks(found: Findings) -> tuple[list[str], dict[str, Any]]:
    failures = [
        f"{time.strftime('%H:%M:%S', time.localtime(at))} {host}: reading {age:.1f}s old"
        for at, host, age in found.stale[:50]
    ]
    if len(found.stale) > 50:
        failures.append(f"... and {len(found.stale) - 50} more stale readings")
    worst_in_outages = max((age for _, _, age in found.stale_in_outages), default=0.0)
    return failures, {
        "checks": found.freshness_checks,
        "max_age_s": round(found.max_age_s, 2),
        "stale_outside_restarts": len(found.stale),
        "max_age_in_restarts_s": round(worst_in_outages, 2),
    }


def markdown(report: dict[str, Any]) -> str:
    plan, api, faults, fresh, leases = (
        report["plan"],
        report["api"],
        report["faults"],
        report["freshness"],
        report["leases"],
    )
    lines = [
        f"{plan['nodes']} simulated nodes ({plan['nodes'] * 8} GPUs) for {report['seconds'] / 60:.0f}"
        f" minutes, {plan['clients']} API clients; restarts {report['outages']};"
        f" {report['kills']} worker SIGKILLs.",
        "",
        "| check | figure |",
        "| --- | --- |",
        f"| API calls | {api['calls']}, statuses {api['statuses']}; latency {_p(api['latency_s'])};"
        f" errors during the restarts {api['errors_in_restarts']} |",
        f"| faults injected | {faults['episodes']} |",
        f"| out of placement after | {_p(faults['detection_s'])}; slowest {faults['slowest']} |",
        f"| out of placement, a worker of the region SIGKILLed meanwhile |"
        f" {_p(faults['detection_during_worker_kills_s'])} |",
        f"| out of placement after 10 s, PostgreSQL or Redis restarted meanwhile |"
        f" {_p(faults['late_during_restarts_s'])} |",
        f"| oldest reading of a healthy node | {fresh['max_age_s']}s over {fresh['checks']} checks"
        f" (stale outside restarts: {fresh['stale_outside_restarts']};"
        f" worst during restarts {fresh['max_age_in_restarts_s']}s) |",
        f"| leases by state | {leases['states']} |",
        f"| reserved lease start lateness | {_p(leases['start_lateness'])} |",
        f"| lease end lateness | {_p(leases['end_lateness'])} |",
        f"| memory after warm-up | {report['memory']['compared']} processes compared;"
        f" worst {report['memory']['worst']} |",
        f"| node-side checks | {report['node_checks']} scans of every node's lease accounts |",
        f"| failures | {len(report['failures'])} |",
    ]
    runtime = report.get("runtime", {})
    if runtime:
        lines += ["", "The platform's own sweep figures at the end (its /metrics):", ""]
        lines += [
            "| sweeps | count | mean duration | mean lateness | begun over 2 s late |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {name} | {f['sweeps']:.0f} | {f['mean_duration_s']}s | {f['mean_lateness_s']}s"
            f" | {f['begun_over_2s_late']:.0f} |"
            for name, f in runtime.items()
        ]
    lines += [""]
    lines += [f"- {failure}" for failure in report["failures"][:30]]
    return "\n".join(lines) + "\n"


def _p(figures: dict[str, float]) -> str:
    if not figures.get("n"):
        return "none"
    return (
        f"p50 {figures['p50']:.2f}s, p99 {figures['p99']:.2f}s, max {figures['max']:.2f}s (n={figures['n']})"
    )


def write_docs(text: str) -> None:
    section_write(f"## Soak\n\nMeasured by `make soak` on this shared machine.\n\n{text}")
