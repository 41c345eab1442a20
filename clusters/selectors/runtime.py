"""Reads of the run time's own health, which clusters/services/runtime.py records in Redis: when each
region queue was last served, each region's last sweep, the counters, and the queues' lengths."""

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from clusters.models import Region
from core.cache import redis_client

KINDS = ("poll", "leases")
SHARED_QUEUES = ("celery", "dispatch")
# Hashes in Redis (the cache's database, which is also the broker's, so queue lengths are there too).
KEY_SERVED = "voltpark:runtime:served"  # queue -> when a task from it last finished (epoch seconds)
KEY_SWEEP_LAST = "voltpark:runtime:sweep_last"  # kind|region -> "duration lateness finished"
KEY_SWEEPS = "voltpark:runtime:sweeps"  # kind|region -> sweeps (poll: chunks) done
KEY_SWEEP_SECONDS = "voltpark:runtime:sweep_seconds"  # kind|region -> their seconds, summed
KEY_SWEEP_LATENESS = "voltpark:runtime:sweep_lateness"  # kind|region -> how late they began, summed
# kind|region|measure|le -> sweeps whose measure (duration, lateness) was at most le: a histogram's
# cumulative buckets, so /metrics exports them as they are.
KEY_SWEEP_BUCKETS = "voltpark:runtime:sweep_buckets"
KEY_AGENT_ERRORS = "voltpark:runtime:agent_errors"  # region|error kind -> nodes that missed a poll
# region -> poll chunks a large share of whose nodes missed at once (telemetry.mass_miss)
KEY_POLL_MASS_MISSES = "voltpark:runtime:poll_mass_misses"
KEY_TRANSITIONS = "voltpark:runtime:lease_transitions"  # region|from|to -> leases moved by sweeps
KEY_TAKEOVERS = "voltpark:runtime:takeovers"  # kind|region|helper -> ticks sent to a helper region
SEPARATOR = "|"  # never in a region code (a slug)
# Upper bounds (seconds) of the sweep duration and lateness histograms: a lease tick is due every
# second and a poll of 1,000 nodes takes one to three, so the alerts' thresholds (2 s, 10 s) are bounds.
SWEEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0)
MEASURES = ("duration", "lateness")
# kombu's Redis transport keeps a queue's messages of priority 3, 6 and 9 in lists of their own.
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def field(*parts: str) -> str:
    return SEPARATOR.join(parts)


def queue_for(kind: str, region: str) -> str:
    """The Celery queue of one kind of a region's run-time work: `poll.us-tx-1`, `leases.us-tx-1`."""
    return f"{kind}.{region}"


def region_codes() -> list[str]:
    return list(Region.objects.order_by("code").values_list("code", flat=True))


def region_queues() -> list[str]:
    """Every region's run-time queues, for a worker that consumes them all."""
    return [queue_for(kind, code) for code in region_codes() for kind in KINDS]


def served_at(queues: list[str]) -> dict[str, float]:
    """When a task from each queue last finished; queues never served are missing."""
    if not queues:
        return {}
    values = redis_client().hmget(KEY_SERVED, queues)
    return {queue: float(value) for queue, value in zip(queues, values, strict=True) if value is not None}


@dataclass
class RuntimeFigures:
    """Everything /metrics shows of the run time's health, read in one round trip."""

    served: dict[str, float] = dataclass_field(default_factory=dict)
    sweep_last: dict[tuple[str, ...], tuple[float, float, float]] = dataclass_field(default_factory=dict)
    sweeps: dict[tuple[str, ...], float] = dataclass_field(default_factory=dict)
    sweep_seconds: dict[tuple[str, ...], float] = dataclass_field(default_factory=dict)
    sweep_lateness: dict[tuple[str, ...], float] = dataclass_field(default_factory=dict)
    sweep_buckets: dict[tuple[str, ...], float] = dataclass_field(default_factory=dict)
    agent_errors: dict[tuple[str, ...], float] = dataclass_field(default_factory=dict)
    poll_mass_misses: dict[tuple[str, ...], float] = dataclass_field(default_factory=dict)
    transitions: dict[tuple[str, ...], float] = dataclass_field(default_factory=dict)
    takeovers: dict[tuple[str, ...], float] = dataclass_field(default_factory=dict)
    queue_lengths: dict[str, int] = dataclass_field(default_factory=dict)


def runtime_figures() -> RuntimeFigures:
    """The recorded figures and the length of every run-time queue (raises RedisError when away)."""
    queues = [*SHARED_QUEUES, *region_queues()]
    keys = [KEY_SERVED, KEY_SWEEP_LAST, KEY_SWEEPS, KEY_SWEEP_SECONDS, KEY_SWEEP_LATENESS]
    keys += [KEY_SWEEP_BUCKETS, KEY_AGENT_ERRORS, KEY_POLL_MASS_MISSES, KEY_TRANSITIONS, KEY_TAKEOVERS]
    with redis_client().pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hgetall(key)
        for queue in queues:
            for suffix in PRIORITY_SUFFIXES:
                pipe.llen(queue + suffix)
        answers = pipe.execute()
    served, last, sweeps, seconds, lateness, buckets, errors, mass_misses, transitions, takeovers = answers[
        : len(keys)
    ]
    lengths = answers[len(keys) :]
    per_queue = len(PRIORITY_SUFFIXES)
    return RuntimeFigures(
        served={_text(k): float(v) for k, v in served.items()},
        sweep_last={_parts(k): _triple(v) for k, v in last.items()},
        sweeps=_counts(sweeps),
        sweep_seconds=_counts(seconds),
        sweep_lateness=_counts(lateness),
        sweep_buckets=_counts(buckets),
        agent_errors=_counts(errors),
        poll_mass_misses=_counts(mass_misses),
        transitions=_counts(transitions),
        takeovers=_counts(takeovers),
        queue_lengths={
            queue: sum(lengths[i * per_queue : (i + 1) * per_queue]) for i, queue in enumerate(queues)
        },
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parts(key: bytes | str) -> tuple[str, ...]:
    return tuple(_text(key).split(SEPARATOR))


def _counts(values: dict[Any, Any]) -> dict[tuple[str, ...], float]:
    return {_parts(k): float(v) for k, v in values.items()}


def _triple(value: bytes | str) -> tuple[float, float, float]:
    duration, lateness, finished = (float(part) for part in _text(value).split())
    return duration, lateness, finished
