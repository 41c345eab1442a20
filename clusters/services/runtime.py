"""The run time's own health, kept in Redis for /metrics and for routing: which region queues are
served, how long and how late each region's sweeps run, agent errors by kind, lease transitions,
and the takeover of a region whose workers are down.

Every region's polls go to `poll.<region>` and its lease sweeps to `leases.<region>`, consumed by
that region's workers. A task from a region queue marks the queue served when it finishes; when a
region's queue has not been served for RUNTIME_TAKEOVER_S, the dispatcher also sends that region's
work to the queue of a region that is served (its workers call the stalled region's agents across
regions), until the region's own workers serve it again. Doing a region's work twice is safe: lease
sweeps claim with SKIP LOCKED and move leases with conditional updates, and a poll is a read.

Recording never fails the work it records: Redis being away costs the figures, not the sweep.
"""

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from redis.exceptions import RedisError

from clusters.selectors.runtime import (
    KEY_AGENT_ERRORS,
    KEY_POLL_MASS_MISSES,
    KEY_SERVED,
    KEY_SWEEP_BUCKETS,
    KEY_SWEEP_LAST,
    KEY_SWEEP_LATENESS,
    KEY_SWEEP_SECONDS,
    KEY_SWEEPS,
    KEY_TAKEOVERS,
    KEY_TRANSITIONS,
    SWEEP_BUCKETS,
    field,
    queue_for,
    region_codes,
    served_at,
)
from core.cache import redis_client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """Where to send one region's work this tick: its own queue, or a helper's when it is taken over."""

    region: str
    queue: str
    takeover: bool = False


@contextmanager
def _recording(what: str) -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        log.warning("run-time figures not recorded (%s): %s", what, exc)


def region_routes(*, kind: str, now: float | None = None) -> list[Route]:
    """Each region's own queue for `kind`, plus a served region's queue for each region not served."""
    now = now if now is not None else time.time()
    codes = region_codes()
    queues = [queue_for(kind, code) for code in codes]
    seen = served_at(queues)
    with _recording("first sight of a queue"):
        # A queue never served yet (a new region, a first deployment) gets the timeout from now.
        client = redis_client()
        for queue in queues:
            if queue not in seen and client.hsetnx(KEY_SERVED, queue, now):
                seen[queue] = now
    stale = {queue for queue in queues if now - seen.get(queue, now) > settings.RUNTIME_TAKEOVER_S}
    served = [code for code, queue in zip(codes, queues, strict=True) if queue not in stale]
    routes = []
    for index, (code, queue) in enumerate(zip(codes, queues, strict=True)):
        routes.append(Route(code, queue))
        if queue in stale and served:
            helper = served[index % len(served)]
            routes.append(Route(code, queue_for(kind, helper), takeover=True))
            log.warning("%s of region %s taken over by %s: %s not served", kind, code, helper, queue)
            takeover_record(kind=kind, region=code, helper=helper)
    return routes


def takeover_record(*, kind: str, region: str, helper: str) -> None:
    with _recording("takeover"):
        redis_client().hincrby(KEY_TAKEOVERS, field(kind, region, helper), 1)


def sweep_record(
    *,
    kind: str,
    region: str,
    queue: str,
    due: float | None,
    started: float,
    finished: float,
    agent_errors: Mapping[str, int] | None = None,
    mass_miss: bool | None = None,
    transitions: Mapping[tuple[str, str], int] | None = None,
) -> None:
    """One region's sweep (or poll chunk) done: its duration, how late it began, what it counted,
    and its queue served."""
    lateness = max(0.0, started - due) if due is not None else 0.0
    duration = finished - started
    with _recording("sweep"), redis_client().pipeline(transaction=False) as pipe:
        pipe.hset(KEY_SERVED, queue, finished)
        pipe.hset(KEY_SWEEP_LAST, field(kind, region), f"{duration:.6f} {lateness:.6f} {finished:.6f}")
        pipe.hincrby(KEY_SWEEPS, field(kind, region), 1)
        pipe.hincrbyfloat(KEY_SWEEP_SECONDS, field(kind, region), duration)
        pipe.hincrbyfloat(KEY_SWEEP_LATENESS, field(kind, region), lateness)
        for measure, value in (("duration", duration), ("lateness", lateness)):
            for bound in SWEEP_BUCKETS:
                if value <= bound:
                    pipe.hincrby(KEY_SWEEP_BUCKETS, field(kind, region, measure, repr(bound)), 1)
        for error, count in (agent_errors or {}).items():
            pipe.hincrby(KEY_AGENT_ERRORS, field(region, error), count)
        if mass_miss is not None:  # a poll chunk: counted from 0, so the series exists before the first
            pipe.hincrby(KEY_POLL_MASS_MISSES, field(region), int(mass_miss))
        for (source, target), count in (transitions or {}).items():
            if count:
                pipe.hincrby(KEY_TRANSITIONS, field(region, source, target), count)
        pipe.execute()
