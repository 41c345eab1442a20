"""Reads of the early-stage program: an organization's applications, the staff queue and its history."""

from collections import defaultdict
from collections.abc import Sequence

from django.db.models import QuerySet

from accounts.models import AuditEntry, Organization
from programs.choices import ApplicationStatus
from programs.models import EarlyStageApplication


def early_stage_applications_of(organization: Organization) -> QuerySet[EarlyStageApplication]:
    """The organization's own applications, newest first."""
    return EarlyStageApplication.objects.filter(organization=organization).order_by("-submitted_at")


def early_stage_queue() -> QuerySet[EarlyStageApplication]:
    """Applications waiting for staff, oldest first."""
    pending = EarlyStageApplication.objects.filter(status=ApplicationStatus.PENDING)
    return pending.select_related("organization", "submitted_by").order_by("submitted_at")


def early_stage_histories(applications: Sequence[EarlyStageApplication]) -> dict[int, list[AuditEntry]]:
    """Every audit row of the organizations' early-stage applications, oldest first, by organization id.

    One query for the whole queue: an organization that applied before shows that decision too.
    """
    rows = (
        AuditEntry.objects.filter(
            object_type=EarlyStageApplication.__name__,
            organization_id__in={application.organization_id for application in applications},
        )
        .select_related("actor")
        .order_by("at", "pk")
    )
    history: dict[int, list[AuditEntry]] = defaultdict(list)
    for row in rows:
        history[row.organization_id].append(row)  # type: ignore[index]
    return history


def early_stage_recent_decisions(limit: int = 10) -> QuerySet[EarlyStageApplication]:
    """The latest decided applications, newest decision first."""
    decided = EarlyStageApplication.objects.exclude(status=ApplicationStatus.PENDING)
    return decided.select_related("organization", "decided_by").order_by("-decided_at")[:limit]
