"""Reads every staff decision queue shares: the audit history of the organizations waiting in it,
and the latest decisions."""

from collections import defaultdict
from collections.abc import Sequence

from django.db.models import QuerySet

from accounts.models import AuditEntry
from programs.choices import ApplicationStatus
from programs.models import StaffDecision


def decision_histories(
    model: type[StaffDecision], waiting: Sequence[StaffDecision]
) -> dict[int, list[AuditEntry]]:
    """Every audit row of `model` for the waiting requests' organizations, oldest first, by
    organization id: one query for the whole queue, so an organization that asked before shows
    that decision too."""
    rows = (
        AuditEntry.objects.filter(
            object_type=model.__name__,
            organization_id__in={decision.organization_id for decision in waiting},  # type: ignore[attr-defined]
        )
        .select_related("actor")
        .order_by("at", "pk")
    )
    history: dict[int, list[AuditEntry]] = defaultdict(list)
    for row in rows:
        history[row.organization_id].append(row)  # type: ignore[index]
    return history


def recent_decisions(model: type[StaffDecision], limit: int = 10) -> QuerySet[StaffDecision]:
    """The latest decided requests of `model`, newest decision first."""
    decided = model._default_manager.exclude(status=ApplicationStatus.PENDING)
    # Every concrete decision has an organization; the abstract base the type names does not.
    with_names = decided.select_related("organization", "decided_by")  # type: ignore[misc]
    return with_names.order_by("-decided_at")[:limit]
