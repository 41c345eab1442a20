"""Reads of the early-stage program: an organization's applications and the staff queue (histories and
recent decisions: decisions.py)."""

from django.db.models import QuerySet

from accounts.models import Organization
from programs.choices import ApplicationStatus
from programs.models import EarlyStageApplication


def early_stage_applications_of(organization: Organization) -> QuerySet[EarlyStageApplication]:
    """The organization's own applications, newest first."""
    return EarlyStageApplication.objects.filter(organization=organization).order_by("-submitted_at")


def early_stage_queue() -> QuerySet[EarlyStageApplication]:
    """Applications waiting for staff, oldest first."""
    pending = EarlyStageApplication.objects.filter(status=ApplicationStatus.PENDING)
    return pending.select_related("organization", "submitted_by").order_by("submitted_at")
