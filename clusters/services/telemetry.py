"""Polling the fleet: every node's agent read at once, the readings written in bulk."""

import math
import time
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from clusters.choices import NodeState
from clusters.models import Node
from clusters.services.agent import (
    AgentAnswer,
    AgentCall,
    AgentClient,
    AgentError,
    Retry,
    parse_xid,
)
from clusters.services.health import health_evaluate
from clusters.services.partitions import telemetry_partition_ensure
from clusters.services.reconciliation import leases_reconcile


@dataclass
class NodePoll:
    """One node's answer to a sweep, matched to its GPU rows."""

    node: dict[str, Any]
    answer: AgentAnswer
    gpus: list[dict[str, Any]]
    readings: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        return answered(self.answer)

    @property
    def error_kind(self) -> str:
        """Why the node's answer was unusable (an AgentError kind), or "" when it answered."""
        if self.answered:
            return ""
        return self.answer.kind or AgentError.BAD_ANSWER

    @property
    def degraded_error(self) -> str:
        body = self.answer.body or {}
        return str(body.get("error") or "NVML failed") if body.get("degraded") else ""


@dataclass
class SweepReport:
    """What one sweep found, for the command line and the logs."""

    nodes: int = 0
    answered: int = 0
    unreachable: list[str] = field(default_factory=list)
    gpus_read: int = 0
    samples_stored: int = 0
    events_opened: list[str] = field(default_factory=list)
    events_ended: int = 0
    nodes_made_unhealthy: list[str] = field(default_factory=list)
    strays_revoked: list[str] = field(default_factory=list)
    retried: int = 0
    # A large share of the chunk missed at once (POLL_MASS_MISS_PCT): its nodes fail only after
    # HEALTH_MASS_MISS_SWEEPS such misses in a row.
    mass_miss: bool = False
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def answered(answer: AgentAnswer) -> bool:
    """Whether an agent's answer to GET /v1/gpus carries readings."""
    return answer.ok and isinstance(answer.body.get("gpus"), list)  # type: ignore[union-attr]


def pollable_node_ids(*, region: str | None = None) -> list[int]:
    """Every node (of one region, or all) with an agent that is not switched off, in a stable order
    for chunking."""
    nodes = Node.objects.exclude(agent_url="").exclude(state=NodeState.OFFLINE)
    if region is not None:
        nodes = nodes.filter(cluster__region__code=region)
    return list(nodes.order_by("pk").values_list("pk", flat=True))


def fleet_poll(*, node_ids: list[int] | None = None, now: datetime | None = None) -> SweepReport:
    """Read the given nodes' agents (default: all pollable), store the readings, apply health rules."""
    started = time.monotonic()
    now = now or timezone.now()
    polls, retried = _poll(node_ids if node_ids is not None else pollable_node_ids())
    report = SweepReport(nodes=len(polls), retried=retried)
    report.errors.update(poll.error_kind for poll in polls if not poll.answered)
    # No transaction around the writes: each bulk statement commits alone, so the thousands of GPU
    # row locks it takes are never held while waiting on a lease row a sweeper has locked.
    unreachable_counts = _store_reachability(polls, now)
    missed = [poll for poll in polls if not poll.answered]
    answered_polls = [poll for poll in polls if poll.answered]
    report.mass_miss = mass_miss(missed=len(missed), polled=len(polls))
    unreachable_after = mass_miss_sweeps() if report.mass_miss else None
    # The nodes that missed are taken out of placement before the readings of the others are
    # written (a second or more for a region's 8,000 GPUs on a loaded machine): detection counts.
    health_evaluate(
        polls=missed,
        unreachable_counts=unreachable_counts,
        now=now,
        report=report,
        unreachable_after=unreachable_after,
    )
    report.gpus_read, report.samples_stored = _store_readings(polls, now)
    report.answered = len(answered_polls)
    report.unreachable = [poll.node["hostname"] for poll in missed]
    health_evaluate(polls=answered_polls, unreachable_counts=unreachable_counts, now=now, report=report)
    report.strays_revoked = leases_reconcile(
        installed={poll.node["id"]: poll.answer.body.get("leases") or () for poll in polls if poll.answered},  # type: ignore[union-attr]
        nodes={poll.node["id"]: poll.node for poll in polls},
    )
    report.seconds = time.monotonic() - started
    return report


def mass_miss(*, missed: int, polled: int) -> bool:
    """Whether so many of a chunk's nodes missed at once that the poller is the likelier cause: a
    starved poller's deadlines pass with the answers waiting in its sockets, and one cut off from
    the fleet sees every node gone. Kubernetes' node controller stops evicting in a zone most of
    whose nodes went unready together, for the same reason."""
    return (
        missed >= settings.POLL_MASS_MISS_MIN_NODES and missed * 100 >= settings.POLL_MASS_MISS_PCT * polled
    )


def mass_miss_sweeps() -> int:
    """Misses in a row that fail a node in a mass miss (never fewer than outside one)."""
    return max(settings.HEALTH_MASS_MISS_SWEEPS, settings.HEALTH_UNREACHABLE_SWEEPS)


NODE_FIELDS = ("id", "hostname", "agent_url", "agent_token_encrypted", "state", "undrained_at")
GPU_FIELDS = ("id", "node_id", "index", "uuid", "read_at")


def _rows(sql: str, params: list[Any], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows as dicts straight from the cursor: the ORM spends 0.2 s building 24,000 of them."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [dict(zip(fields, row, strict=True)) for row in cursor.fetchall()]


def _poll(node_ids: list[int]) -> tuple[list[NodePoll], int]:
    nodes = _rows(
        f"SELECT {', '.join(NODE_FIELDS)} FROM clusters_node WHERE id = ANY(%s::bigint[])",
        [pg_array(node_ids)],
        NODE_FIELDS,
    )
    gpus_by_node: dict[int, list[dict[str, Any]]] = {node["id"]: [] for node in nodes}
    gpus = _rows(
        'SELECT id, node_id, "index", uuid, read_at FROM clusters_gpu WHERE node_id = ANY(%s::bigint[])',
        [pg_array(list(gpus_by_node))],
        GPU_FIELDS,
    )
    for gpu in gpus:
        gpus_by_node[gpu["node_id"]].append(gpu)
    calls = [
        AgentCall(node["id"], "GET", node["agent_url"], node["agent_token_encrypted"], "v1/gpus")
        for node in nodes
    ]
    answers, retried = _ask_agents(calls)
    polls = [NodePoll(node, answers[node["id"]], gpus_by_node[node["id"]]) for node in nodes]
    for poll in polls:
        if poll.answered:
            by_index = {g.get("index"): g for g in poll.answer.body["gpus"] if isinstance(g, dict)}  # type: ignore[index]
            poll.readings = {
                gpu["id"]: by_index[gpu["index"]] for gpu in poll.gpus if gpu["index"] in by_index
            }
    return polls, retried


def _ask_agents(calls: list[AgentCall]) -> tuple[dict[Hashable, AgentAnswer], int]:
    """Every node's answer, and how many nodes were asked twice.

    A node whose answer is unusable is asked once more, POLL_RETRY_DELAY_MS after its own answer
    (not after the slowest node's) and within POLL_RETRY_TIMEOUT_MS, so that one slow or dropped
    answer is not a miss: a miss (both failed) takes the node out of placement at once, which is
    what keeps detection inside 10 s (see docs/decisions.md).
    """
    retry = Retry(
        usable=answered,
        delay_s=settings.POLL_RETRY_DELAY_MS / 1000,
        timeout_s=settings.POLL_RETRY_TIMEOUT_MS / 1000,
    )
    client = AgentClient.kept(concurrency=settings.POLL_CONCURRENCY)
    answers = client.call(calls, timeout_s=settings.POLL_TIMEOUT_MS / 1000, retry=retry)
    return answers, sum(1 for answer in answers.values() if answer.attempts > 1)


def _store_reachability(polls: list[NodePoll], now: datetime) -> dict[int, int]:
    """Reset the missed-poll count of nodes that answered; count one more for the rest."""
    answered = [poll.node["id"] for poll in polls if poll.answered]
    missed = [poll.node["id"] for poll in polls if not poll.answered]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE clusters_node SET unreachable_sweeps = 0, last_seen_at = %s WHERE id = ANY(%s)",
            [now, answered],
        )
        cursor.execute(
            "UPDATE clusters_node SET unreachable_sweeps = unreachable_sweeps + 1 WHERE id = ANY(%s)"
            " RETURNING id, unreachable_sweeps",
            [missed],
        )
        return dict(cursor.fetchall())


INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
SMALLINT_MAX = 2**15 - 1


def _int(value: object, high: int = INT32_MAX) -> int | None:
    """A reading's integer, or None when it is missing or cannot fit its column (never fail the sweep)."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    return int(value) if 0 <= value <= high else None


def _float(value: object) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    return float(value)


def pg_array(values: list[Any]) -> str:
    """A PostgreSQL array literal ('{1,NULL,2.5}') for numbers, timestamps and None.

    Passed as one text parameter and cast (`%s::int[]`), it is parsed by array_in in one pass;
    psycopg2's own list adaptation sends ARRAY[...] expressions whose 24,000 elements each the SQL
    parser turns into a node (0.4 s a sweep here).
    """
    return "{" + ",".join([_pg_element(value) for value in values]) + "}"


def _pg_element(value: Any) -> str:
    if value is None:
        return "NULL"
    return f'"{value.isoformat()}"' if isinstance(value, datetime) else str(value)


def _store_readings(polls: list[NodePoll], now: datetime) -> tuple[int, int]:
    """The latest reading onto each GPU row, samples when due, and the lease-hour summaries."""
    latest: list[tuple[Any, ...]] = []
    samples: list[tuple[Any, ...]] = []
    usage: list[tuple[Any, ...]] = []
    interval = settings.POLL_INTERVAL_S
    for poll in polls:
        for gpu in poll.gpus:
            reading = poll.readings.get(gpu["id"])
            if reading is None:
                continue
            row = _latest_row(gpu["id"], reading)
            latest.append(row)
            if reading.get("lost") or row[1] is None:
                continue
            if _sample_due(gpu["read_at"], now):
                samples.append((gpu["id"], row[1], row[2], row[4], row[5]))
            gap = (now - gpu["read_at"]).total_seconds() if gpu["read_at"] else interval
            usage.append((gpu["id"], row[1], row[2], row[5] or 0.0, max(0.0, min(gap, 2.0 * interval))))
    _update_latest(latest, now)
    _insert_samples(samples, now)
    _upsert_usage(usage, now)
    return len(latest), len(samples)


def _latest_row(gpu_id: int, reading: dict[str, Any]) -> tuple[Any, ...]:
    xid_code, xid_at = parse_xid(reading)
    return (
        gpu_id,
        _int(reading.get("utilization_pct"), SMALLINT_MAX),
        _int(reading.get("memory_used_bytes"), INT64_MAX),
        _int(reading.get("memory_total_bytes"), INT64_MAX),
        _int(reading.get("temperature_c"), SMALLINT_MAX),
        _float(reading.get("power_draw_w")),
        _float(reading.get("power_limit_w")),
        _int(reading.get("ecc_uncorrectable_volatile")),
        _int(xid_code),
        xid_at,
    )


def _sample_due(previous: datetime | None, now: datetime) -> bool:
    """A sample is kept once per TELEMETRY_SAMPLE_INTERVAL_S, not every poll (see docs/decisions.md)."""
    step = settings.TELEMETRY_SAMPLE_INTERVAL_S
    return previous is None or int(previous.timestamp() // step) != int(now.timestamp() // step)


def _columns(rows: list[tuple[Any, ...]]) -> list[str]:
    """The rows' columns, each as one array literal."""
    return [pg_array(list(column)) for column in zip(*rows, strict=True)]


def _update_latest(rows: list[tuple[Any, ...]], now: datetime) -> None:
    # One UPDATE ... FROM unnest(...) for the whole sweep: Django's bulk_update writes CASE chains instead.
    # No indexed column changes and clusters_gpu keeps free room on each page (fillfactor 50, migration
    # 0006), so these are HOT updates: no index entries written, 4-8x faster than without.
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE clusters_gpu AS g SET read_at = %s, utilization_pct = v.util, memory_used_bytes = v.mem,
                memory_total_bytes = v.mem_total, temperature_c = v.temp, power_draw_w = v.power,
                power_limit_w = v.power_limit, ecc_uncorrectable = v.ecc, last_xid_code = v.xid,
                last_xid_at = v.xid_at
            FROM unnest(%s::bigint[], %s::int[], %s::bigint[], %s::bigint[], %s::int[], %s::float8[],
                        %s::float8[], %s::int[], %s::int[], %s::timestamptz[])
                AS v(id, util, mem, mem_total, temp, power, power_limit, ecc, xid, xid_at)
            WHERE g.id = v.id
            """,
            [now, *_columns(rows)],
        )


def _insert_samples(rows: list[tuple[Any, ...]], now: datetime) -> None:
    if not rows:
        return
    # Normally made days ahead by beat; a sample never waits for beat to have run.
    telemetry_partition_ensure(day=now.astimezone(UTC).date())
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO clusters_gpusample (gpu_id, at, utilization_pct, memory_used_bytes, temperature_c,
                                            power_draw_w)
            SELECT v.gpu, %s, v.util, v.mem, v.temp, v.power
            FROM unnest(%s::bigint[], %s::int[], %s::bigint[], %s::int[], %s::float8[])
                AS v(gpu, util, mem, temp, power)
            """,
            [now, *_columns(rows)],
        )


def _upsert_usage(rows: list[tuple[Any, ...]], now: datetime) -> None:
    """Add this sweep's readings to the hour of every active lease holding the GPUs read.

    Ordered by lease so that two workers upserting overlapping rows lock them in the same order.
    """
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO clusters_leasetelemetryhour (lease_id, hour, readings, utilization_sum,
                                                 memory_peak_bytes, energy_wh)
            SELECT a.lease_id, date_trunc('hour', %s::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                   count(*), coalesce(sum(v.util), 0), coalesce(max(v.mem), 0),
                   sum(v.power * v.seconds / 3600.0)
            FROM unnest(%s::bigint[], %s::int[], %s::bigint[], %s::float8[], %s::float8[])
                AS v(gpu, util, mem, power, seconds)
            JOIN clusters_allocation a ON a.gpu_id = v.gpu AND a.is_live AND a.period @> %s::timestamptz
            JOIN clusters_lease l ON l.id = a.lease_id AND l.state = 'active'
            GROUP BY a.lease_id ORDER BY a.lease_id
            ON CONFLICT (lease_id, hour) DO UPDATE SET
                readings = clusters_leasetelemetryhour.readings + EXCLUDED.readings,
                utilization_sum = clusters_leasetelemetryhour.utilization_sum + EXCLUDED.utilization_sum,
                memory_peak_bytes = GREATEST(clusters_leasetelemetryhour.memory_peak_bytes,
                                             EXCLUDED.memory_peak_bytes),
                energy_wh = clusters_leasetelemetryhour.energy_wh + EXCLUDED.energy_wh
            """,
            [now, *_columns(rows), now],
        )
