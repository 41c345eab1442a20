"""Capacity freed: a release, an end, a cancellation or a node back in service wakes the queue."""

from django.core.cache import cache
from django.db import transaction

from clusters.choices import LeaseRequestState
from clusters.models import LeaseRequest

# Set while a dispatch task is queued and not yet started: a burst of releases queues one task.
PENDING_KEY = "clusters:lease-requests:dispatch-pending"
PENDING_TTL_S = 60


def capacity_freed() -> None:
    """Queued requests may fit now: dispatch them once the caller's transaction commits.

    A failure to reach the broker is logged, never raised into the change that freed the GPUs
    (it has committed); beat's periodic dispatch picks the queue up within its interval.
    """
    transaction.on_commit(_wake_dispatcher, robust=True)


def _wake_dispatcher() -> None:
    if not LeaseRequest.objects.filter(state=LeaseRequestState.QUEUED).exists():
        return
    if not cache.add(PENDING_KEY, 1, timeout=PENDING_TTL_S):
        return
    from clusters import tasks  # tasks sit above services; imported when first needed

    tasks.lease_requests_dispatch.apply_async(expires=PENDING_TTL_S)
