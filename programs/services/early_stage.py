"""The early-stage program: an organization applies, staff approve (quota, pool, credit) or reject."""

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Organization, User
from accounts.services.audit import audit_record
from programs.choices import ApplicationStatus
from programs.models import EarlyStageApplication
from programs.services.decisions import (
    decide,
    email_after_commit,
    pending_locked,
    require_owner,
    require_staff_admin,
)

WHAT = "early-stage applications"
# An approval's credit, saved with the decision.
GRANTED_CREDIT = ("granted_credit", "granted_credit_expires_at")


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
    require_owner(actor, organization, "Only an owner of the organization may apply.")
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

    require_staff_admin(actor, WHAT)
    application = pending_locked(application, "application", "submitted_by")
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
    decide(application, actor, ApplicationStatus.APPROVED, note, gpu_quota, GRANTED_CREDIT)
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
    require_staff_admin(actor, WHAT)
    if not note.strip():
        raise ValidationError({"note": "Say why the application is rejected; the applicant reads this."})
    application = pending_locked(application, "application", "submitted_by")
    decide(application, actor, ApplicationStatus.REJECTED, note, None)
    audit_record(
        actor=actor,
        action="early_stage.reject",
        obj=application,
        organization=application.organization,
        after={"note": note},
    )
    _email(application, "not approved", f"Your application was not approved.\n\n{note}\n")
    return application


def _approval_text(application: EarlyStageApplication, amount: Decimal, expires_at: datetime) -> str:
    return (
        f"Welcome to the Voltpark early-stage program.\n\n"
        f"{application.organization.name} may now hold up to {application.granted_gpu_quota} GPUs, "
        f"books the early-stage pool first, and has a credit of {amount} USD "
        f"until {expires_at:%Y-%m-%d} (UTC).\n\n{application.decision_note}\n"
    )


def _email(application: EarlyStageApplication, outcome: str, body: str) -> None:
    subject = f"Your Voltpark early-stage application for {application.organization.name} was {outcome}"
    email_after_commit(subject, body, [application.submitted_by.email])
