"""Reads of quota requests: an organization's own, the staff queue, their history and decisions."""

from collections import defaultdict
from collections.abc import Sequence

from django.db.models import QuerySet

from accounts.models import AuditEntry, Organization
from programs.choices import ApplicationStatus
from programs.models import QuotaRequest


def quota_requests_of(organization: Organization) -> QuerySet[QuotaRequest]:
    """The organization's own quota requests, newest first."""
    return (
        QuotaRequest.objects.filter(organization=organization)
        .select_related("requested_by", "decided_by")
        .order_by("-requested_at", "-pk")
    )


def quota_request_queue() -> QuerySet[QuotaRequest]:
    """Quota requests waiting for staff, oldest first."""
    pending = QuotaRequest.objects.filter(status=ApplicationStatus.PENDING)
    return pending.select_related("organization", "requested_by").order_by("requested_at", "pk")


def quota_request_histories(requests: Sequence[QuotaRequest]) -> dict[int, list[AuditEntry]]:
    """Every audit row of the organizations' quota requests, oldest first, by organization id (one query)."""
    rows = (
        AuditEntry.objects.filter(
            object_type=QuotaRequest.__name__,
            organization_id__in={request.organization_id for request in requests},
        )
        .select_related("actor")
        .order_by("at", "pk")
    )
    history: dict[int, list[AuditEntry]] = defaultdict(list)
    for row in rows:
        history[row.organization_id].append(row)  # type: ignore[index]
    return history


def quota_request_recent_decisions(limit: int = 10) -> QuerySet[QuotaRequest]:
    """The latest decided quota requests, newest decision first."""
    decided = QuotaRequest.objects.exclude(status=ApplicationStatus.PENDING)
    return decided.select_related("organization", "decided_by").order_by("-decided_at")[:limit]
