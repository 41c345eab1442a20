"""The early-stage program's applications and staff's decisions on them."""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from core.db import PublicIdModel
from programs.choices import ApplicationStatus, CompanyStage

# Enough for a few paragraphs; an application is read by a person, not stored as a document.
ANSWER_MAX_LENGTH = 2000
NOTE_MAX_LENGTH = 2000


class StaffDecision(PublicIdModel):
    """What every request staff decide on shares: its status, who decided, when, the note and the quota."""

    status = models.CharField(max_length=10, choices=ApplicationStatus, default=ApplicationStatus.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(max_length=NOTE_MAX_LENGTH, blank=True)
    granted_gpu_quota = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        abstract = True


class EarlyStageApplication(StaffDecision):
    """An organization's request to join the early-stage program, and staff's decision on it."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="early_stage_applications"
    )
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    what_we_build = models.TextField(max_length=ANSWER_MAX_LENGTH)
    stage = models.CharField(max_length=20, choices=CompanyStage)
    funding = models.CharField(max_length=200, help_text="Funding raised so far, in the applicant's words.")
    gpus_wanted = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    why = models.TextField(max_length=ANSWER_MAX_LENGTH)
    submitted_at = models.DateTimeField(default=timezone.now)
    granted_credit = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="USD granted on approval."
    )
    granted_credit_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(status=ApplicationStatus.PENDING),
                name="early_stage_one_pending_per_org",
            )
        ]
        indexes = [models.Index(fields=["status", "submitted_at"], name="early_stage_queue")]

    def __str__(self) -> str:
        return f"{self.organization} ({self.status})"


class QuotaRequest(StaffDecision):
    """An owner's request for a higher GPU quota (how many, until when, why), and staff's decision."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="quota_requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    gpus = models.PositiveIntegerField(
        validators=[MinValueValidator(1)], help_text="The quota asked for: most GPUs held at one instant."
    )
    needed_until = models.DateField(null=True, blank=True, help_text="Until when the GPUs are needed.")
    why = models.TextField(max_length=ANSWER_MAX_LENGTH)
    quota_before = models.PositiveIntegerField(help_text="The organization's quota when it asked.")
    requested_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="When an approved quota goes back to what it was; never when empty."
    )
    expired_at = models.DateTimeField(null=True, blank=True, help_text="When the quota went back.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(status=ApplicationStatus.PENDING),
                name="quota_request_one_pending_per_org",
            )
        ]
        indexes = [
            models.Index(fields=["status", "requested_at"], name="quota_request_queue"),
            models.Index(
                fields=["expires_at"],
                condition=Q(status=ApplicationStatus.APPROVED, expired_at__isnull=True),
                name="quota_request_to_expire",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization}: {self.gpus} GPUs ({self.status})"
