"""The early-stage program: an organization applies, staff approve (quota, pool, credit) or reject."""

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from accounts.choices import Role
from accounts.models import Membership, Organization, User
from accounts.selectors.staff import is_staff_admin
from accounts.services.audit import audit_record
from programs.choices import ApplicationStatus
from programs.models import EarlyStageApplication


@transaction.atomic
def early_stage_apply(
    *,
    actor: User,
    organization: Organization,
    what_we_build: str,
    stage: str,
    funding: str,
    gpus_wanted: int,
    why: str,
) -> EarlyStageApplication:
    """An owner applies for the organization; one application may be pending at a time."""
    if not Membership.objects.filter(user=actor, organization=organization, role=Role.OWNER).exists():
        raise PermissionDenied("Only an owner of the organization may apply.")
    # Lock the organization so two owners applying at once queue here.
    Organization.objects.select_for_update().get(pk=organization.pk)
    if EarlyStageApplication.objects.filter(
        organization=organization, status=ApplicationStatus.PENDING
    ).exists():
        raise ValidationError("This organization already has an application waiting for review.")
    application = EarlyStageApplication.objects.create(
        organization=organization,
        submitted_by=actor,
        what_we_build=what_we_build,
        stage=stage,
        funding=funding,
        gpus_wanted=gpus_wanted,
        why=why,
    )
    audit_record(
        actor=actor,
        action="early_stage.apply",
        obj=application,
        organization=organization,
        after={"stage": stage, "gpus_wanted": gpus_wanted},
    )
    return application


def _require_staff_admin(actor: User) -> None:
    if not is_staff_admin(actor):
        raise PermissionDenied("Only a staff admin may decide on early-stage applications.")


def _pending_locked(application: EarlyStageApplication) -> EarlyStageApplication:
    locked = EarlyStageApplication.objects.select_for_update().select_related("organization", "submitted_by")
    application = locked.get(pk=application.pk)
    if application.status != ApplicationStatus.PENDING:
        raise ValidationError(f"This application was already {application.status}.")
    return application


@transaction.atomic
def early_stage_approve(
    *,
    actor: User,
    application: EarlyStageApplication,
    gpu_quota: int,
    credit_amount: Decimal,
    credit_expires_at: datetime,
    note: str = "",
) -> EarlyStageApplication:
    """Approve: the organization gets the quota, the early-stage pool and a credit grant."""
    from billing.services.credits import credit_grant_create

    _require_staff_admin(actor)
    application = _pending_locked(application)
    organization = Organization.objects.select_for_update().get(pk=application.organization_id)
    before = {"gpu_quota": organization.gpu_quota, "early_stage_approved": organization.early_stage_approved}
    organization.gpu_quota, organization.early_stage_approved = gpu_quota, True
    organization.save(update_fields=["gpu_quota", "early_stage_approved"])
    grant = credit_grant_create(
        actor=actor,
        organization=organization,
        amount=credit_amount,
        expires_at=credit_expires_at,
        note=f"Early-stage program, application {application.public_id}",
    )
    application.granted_credit, application.granted_credit_expires_at = grant.amount, credit_expires_at
    _decide(application, actor, ApplicationStatus.APPROVED, note, gpu_quota)
    audit_record(
        actor=actor,
        action="early_stage.approve",
        obj=application,
        organization=organization,
        before=before,
        after={
            "gpu_quota": gpu_quota,
            "early_stage_approved": True,
            "credit": str(grant.amount),
            "credit_expires_at": credit_expires_at.isoformat(),
        },
    )
    _email(application, "approved", _approval_text(application, grant.amount, credit_expires_at))
    return application


@transaction.atomic
def early_stage_reject(
    *, actor: User, application: EarlyStageApplication, note: str
) -> EarlyStageApplication:
    """Reject with a note that the applicant receives."""
    _require_staff_admin(actor)
    if not note.strip():
        raise ValidationError({"note": "Say why the application is rejected; the applicant reads this."})
    application = _pending_locked(application)
    _decide(application, actor, ApplicationStatus.REJECTED, note, None)
    audit_record(
        actor=actor,
        action="early_stage.reject",
        obj=application,
        organization=application.organization,
        after={"note": note},
    )
    _email(application, "not approved", f"Your application was not approved.\n\n{note}\n")
    return application


def _decide(
    application: EarlyStageApplication, actor: User, status: str, note: str, quota: int | None
) -> None:
    application.status, application.decided_by, application.decided_at = status, actor, timezone.now()
    application.decision_note, application.granted_gpu_quota = note, quota
    application.save(
        update_fields=[
            "status",
            "decided_by",
            "decided_at",
            "decision_note",
            "granted_gpu_quota",
            "granted_credit",
            "granted_credit_expires_at",
        ]
    )


def _approval_text(application: EarlyStageApplication, amount: Decimal, expires_at: datetime) -> str:
    return (
        f"Welcome to the Voltpark early-stage program.\n\n"
        f"{application.organization.name} may now hold up to {application.granted_gpu_quota} GPUs, "
        f"books the early-stage pool first, and has a credit of {amount} USD "
        f"until {expires_at:%Y-%m-%d} (UTC).\n\n{application.decision_note}\n"
    )


def _email(application: EarlyStageApplication, outcome: str, body: str) -> None:
    recipient, name = application.submitted_by.email, application.organization.name
    transaction.on_commit(
        lambda: send_mail(
            f"Your Voltpark early-stage application for {name} was {outcome}", body, None, [recipient]
        )
    )
