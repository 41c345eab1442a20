"""Celery tasks of the run time: thin wrappers over the services, safe to run twice.

Beat ticks the dispatchers (queue `dispatch`); they send each region's polls and lease sweeps to
that region's queues, `poll.<region>` and `leases.<region>` (clusters/services/runtime.py says how
a region whose workers are down is taken over).
"""

import logging
import time

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from clusters.choices import LeaseState
from clusters.services.capacity import PENDING_KEY
from clusters.services.idempotency import idempotency_keys_purge as idempotency_keys_purge_service
from clusters.services.lease_requests import lease_requests_dispatch as lease_requests_dispatch_service
from clusters.services.lifecycle import gpus_cleanup_check
from clusters.services.lifecycle import leases_enforce as leases_enforce_service
from clusters.services.partitions import telemetry_partitions_maintain as telemetry_partitions_service
from clusters.services.pools import pool_shares_apply
from clusters.services.remediation import leases_remediate
from clusters.services.runtime import region_routes, sweep_record
from clusters.services.telemetry import fleet_poll, mass_miss_sweeps, pollable_node_ids
from core.cache import redis_client

log = logging.getLogger(__name__)

POLL_DISPATCHED_KEY = "voltpark:runtime:poll-dispatched"
# A fraction of the poll interval: ticks closer than this to the last dispatched one are duplicates.
POLL_DISPATCH_GAP = 0.6


@shared_task(ignore_result=True)
def fleet_poll_dispatch() -> int:
    """Send every region's nodes, in chunks, to its poll queue, so several workers share a sweep.

    A tick within POLL_DISPATCH_GAP of an interval after the last dispatched one (a second beat, a
    duplicated message) dispatches nothing. Measured from the last dispatch, not by fixed time slots:
    a tick that waited a moment in the queue must not land in its successor's slot and make the next
    tick a duplicate, which left a gap of two intervals in the polls (the soak saw it as a fault
    out of placement after 11 s).
    """
    interval = settings.POLL_INTERVAL_S
    gap_ms = int(interval * 1000 * POLL_DISPATCH_GAP)
    if not redis_client().set(POLL_DISPATCHED_KEY, 1, nx=True, px=gap_ms):
        return 0
    size, sent, due = settings.POLL_CHUNK_NODES, 0, time.time()
    for route in region_routes(kind="poll"):
        node_ids = pollable_node_ids(region=route.region)
        for i in range(0, len(node_ids), size):
            kwargs = {"region": route.region, "queue": route.queue, "due": due}
            fleet_poll_chunk.apply_async(
                args=[node_ids[i : i + size]], kwargs=kwargs, queue=route.queue, expires=interval
            )
            sent += 1
    return sent


@shared_task(ignore_result=True)
def fleet_poll_chunk(node_ids: list[int], *, region: str, queue: str, due: float) -> None:
    """Poll one chunk of a region's nodes and apply the health rules."""
    started = time.time()
    report = fleet_poll(node_ids=node_ids)
    sweep_record(
        kind="poll",
        region=region,
        queue=queue,
        due=due,
        started=started,
        finished=time.time(),
        agent_errors=report.errors,
        mass_miss=report.mass_miss,
    )
    if report.mass_miss:
        log.warning(
            "%d of %d nodes of %s missed this poll at once: failed only after %d such misses in a row",
            len(report.unreachable),
            report.nodes,
            region,
            mass_miss_sweeps(),
        )
    log.info(
        "polled %d nodes of %s in %.2fs: %d unreachable, %d events opened",
        report.nodes,
        region,
        report.seconds,
        len(report.unreachable),
        len(report.events_opened),
    )


@shared_task(ignore_result=True)
def leases_enforce_dispatch() -> int:
    """Send a lease sweep of every region to its leases queue."""
    due = time.time()
    routes = region_routes(kind="leases")
    for route in routes:
        leases_enforce.apply_async(
            kwargs={"region": route.region, "queue": route.queue, "due": due},
            queue=route.queue,
            expires=settings.LEASE_SWEEP_INTERVAL_S,
        )
    return len(routes)


@shared_task(ignore_result=True)
def leases_enforce(*, region: str, queue: str, due: float) -> None:
    """Start, end and fail one region's due leases; warn owners of reserved leases about to end."""
    started = time.time()
    # Leases on nodes out of service are moved (or failed, or given a replacement) before anything
    # starts: none starts there.
    remedied = leases_remediate(region=region)
    report = leases_enforce_service(region=region)
    moved = pool_shares_apply(region=region)
    if moved:
        log.info("pools of %s: %s moved toward the early-stage share", region, ", ".join(moved))
    transitions: dict[tuple[str, str], int] = {
        (LeaseState.SCHEDULED, LeaseState.ACTIVE): report.started,
        (LeaseState.ACTIVE, LeaseState.ENDED): report.ended,
        (LeaseState.SCHEDULED, LeaseState.FAILED): report.failed,
    }
    sweep_record(
        kind="leases",
        region=region,
        queue=queue,
        due=due,
        started=started,
        finished=time.time(),
        transitions=transitions,
    )
    if remedied.replaced or remedied.failed or remedied.replacements_booked or remedied.replacements_offered:
        log.info(
            "remediation in %s: %d re-placed, %d failed, %d replacements booked, %d offered",
            region,
            len(remedied.replaced),
            len(remedied.failed),
            len(remedied.replacements_booked),
            len(remedied.replacements_offered),
        )
    if report.started or report.ended or report.failed:
        log.info(
            "leases of %s: %d started, %d ended, %d failed",
            region,
            report.started,
            report.ended,
            report.failed,
        )


@shared_task(ignore_result=True)
def gpus_cleanup() -> None:
    """Ask agents again about GPUs whose last lease ended without a clean report."""
    gpus_cleanup_check()


@shared_task(ignore_result=True)
def telemetry_partitions_maintain() -> None:
    """Make the coming days' sample partitions and drop those past retention."""
    report = telemetry_partitions_service()
    if report.created or report.dropped or report.busy:
        log.info(
            "telemetry partitions: created %s, dropped %s, busy %s",
            report.created,
            report.dropped,
            report.busy,
        )


@shared_task(ignore_result=True)
def idempotency_keys_purge() -> None:
    """Delete Idempotency-Key rows past their retention."""
    idempotency_keys_purge_service()


@shared_task(ignore_result=True)
def lease_requests_dispatch() -> None:
    """Book the queued requests that fit now, in the fair order; expire those past their not_after.

    Woken when capacity frees (clusters.services.capacity) and run by beat as a safety net. The
    pending flag is cleared first, so a release during the run queues one more run.
    """
    cache.delete(PENDING_KEY)
    report = lease_requests_dispatch_service()
    if report is not None and (report.booked or report.expired):
        log.info("lease requests: %d booked, %d expired", len(report.booked), report.expired)
