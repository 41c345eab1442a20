"""Queued lease request reads: an organization's requests, their place in the queue, GPUs queued."""

from django.db.models import Count, Q, QuerySet, Sum

from accounts.models import Organization
from clusters.choices import LeaseRequestState
from clusters.models import LeaseRequest
from core.db import get_by_public_id_or_404


def lease_requests_of(organization: Organization, *, state: str | None = None) -> QuerySet[LeaseRequest]:
    """The organization's requests, newest first, with what the API and pages show of them."""
    requests = LeaseRequest.objects.filter(organization=organization).select_related("region", "lease")
    if state:
        requests = requests.filter(state=state)
    return requests.prefetch_related("ssh_keys").order_by("-created_at", "-pk")


def lease_request_of_organization_or_404(organization: Organization, public_id: object) -> LeaseRequest:
    """One of the organization's requests; another organization's id (or a malformed one) is a 404."""
    return get_by_public_id_or_404(lease_requests_of(organization), public_id)


def gpus_queued(organization: Organization) -> int:
    """GPUs the organization has asked for in queued requests: they count against its quota."""
    queued = LeaseRequest.objects.filter(organization=organization, state=LeaseRequestState.QUEUED)
    return queued.aggregate(gpus=Sum("gpus"))["gpus"] or 0


def competing(request: LeaseRequest) -> Q:
    """Queued requests that want a region this one wants (the same, or either takes any)."""
    wanted = Q(state=LeaseRequestState.QUEUED)
    if request.region_id is None:
        return wanted
    return wanted & (Q(region_id=request.region_id) | Q(region__isnull=True))


def queue_position(request: LeaseRequest) -> int | None:
    """1 for the first in line for its region(s), oldest first; None once it left the queue."""
    if request.state != LeaseRequestState.QUEUED:
        return None
    ahead = LeaseRequest.objects.filter(competing(request)).filter(
        Q(created_at__lt=request.created_at) | Q(created_at=request.created_at, pk__lt=request.pk)
    )
    return ahead.count() + 1


def queue_depth() -> dict[str | None, tuple[int, int]]:
    """Per region code (None: any region), the queued requests and the GPUs they ask for."""
    rows = (
        LeaseRequest.objects.filter(state=LeaseRequestState.QUEUED)
        .values("region__code")
        .annotate(requests=Count("pk"), gpus=Sum("gpus"))
    )
    return {row["region__code"]: (row["requests"], row["gpus"]) for row in rows}
