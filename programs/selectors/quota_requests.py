"""Reads of quota requests: an organization's own and the staff queue (histories and recent decisions:
decisions.py)."""

from django.db.models import QuerySet

from accounts.models import Organization
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
