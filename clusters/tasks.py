"""Celery tasks of the run time: thin wrappers over the services, safe to run twice."""

import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from clusters.services.idempotency import idempotency_keys_purge as idempotency_keys_purge_service
from clusters.services.lifecycle import gpus_cleanup_check
from clusters.services.lifecycle import leases_enforce as leases_enforce_service
from clusters.services.partitions import telemetry_partitions_maintain as telemetry_partitions_service
from clusters.services.telemetry import fleet_poll, pollable_node_ids

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def fleet_poll_dispatch() -> int:
    """Split the fleet into chunks, one task each, so several workers share a sweep.

    A duplicated beat in the same interval dispatches nothing: the first one claims the slot.
    """
    slot = int(timezone.now().timestamp() // settings.POLL_INTERVAL_S)
    if not cache.add(f"runtime:poll-slot:{slot}", 1, timeout=settings.POLL_INTERVAL_S * 2):
        return 0
    node_ids = pollable_node_ids()
    size = settings.POLL_CHUNK_NODES
    chunks = [node_ids[i : i + size] for i in range(0, len(node_ids), size)]
    for chunk in chunks:
        fleet_poll_chunk.apply_async(args=[chunk], expires=settings.POLL_INTERVAL_S)
    return len(chunks)


@shared_task(ignore_result=True)
def fleet_poll_chunk(node_ids: list[int]) -> None:
    """Poll one chunk of nodes and apply the health rules."""
    report = fleet_poll(node_ids=node_ids)
    log.info(
        "polled %d nodes in %.2fs: %d unreachable, %d events opened",
        report.nodes,
        report.seconds,
        len(report.unreachable),
        len(report.events_opened),
    )


@shared_task(ignore_result=True)
def leases_enforce() -> None:
    """Start, end and fail due leases; warn owners of reserved leases about to end."""
    report = leases_enforce_service()
    if report.started or report.ended or report.failed:
        log.info("leases: %d started, %d ended, %d failed", report.started, report.ended, report.failed)


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
