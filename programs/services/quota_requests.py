"""Asking for more quota: an owner asks (how many GPUs, until when, why); staff admins approve, with
an expiry if they choose, or reject; an approved quota goes back to what it was when it expires.

Every step is audited and emailed once the transaction commits: staff when an owner asks, the
owner who asked when staff decide and when the quota goes back.
"""

from datetime import date, datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import GPU_QUOTA_MAX, Organization, User
from accounts.services.audit import audit_record
from programs.choices import ApplicationStatus
from programs.models import QuotaRequest
from programs.services.decisions import (
    decide,
    email_after_commit,
    pending_locked,
    require_owner,
    require_staff_admin,
)

WHAT = "quota requests"


@transaction.atomic
def quota_request_create(
    *, actor: User, organization: Organization, gpus: int, why: str, needed_until: date | None = None
) -> QuotaRequest:
    """An owner asks for a quota of `gpus`; one request may wait at a time per organization."""
    require_owner(actor, organization, "Only an owner of the organization may ask for more quota.")
    # The organization's row lock: two owners asking at once queue here, and the quota is current.
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    if gpus <= organization.gpu_quota:
        raise ValidationError(
            {"gpus": f"Your quota is already {organization.gpu_quota} GPUs; ask for more than that."}
        )
    if gpus > GPU_QUOTA_MAX:
        raise ValidationError({"gpus": f"Ask for at most {GPU_QUOTA_MAX} GPUs."})
    if needed_until is not None and needed_until <= timezone.now().date():
        raise ValidationError({"needed_until": "Choose a day after today."})
    if not why.strip():
        raise ValidationError({"why": "Say what the GPUs are for; staff decide on it."})
    if QuotaRequest.objects.filter(organization=organization, status=ApplicationStatus.PENDING).exists():
        raise ValidationError("This organization already has a quota request waiting for review.")
    request = QuotaRequest.objects.create(
        organization=organization,
        requested_by=actor,
        gpus=gpus,
        needed_until=needed_until,
        why=why.strip(),
        quota_before=organization.gpu_quota,
    )
    audit_record(
        actor=actor,
        action="quota_request.create",
        obj=request,
        organization=organization,
        before={"gpu_quota": organization.gpu_quota},
        after={"gpus": gpus, "needed_until": needed_until.isoformat() if needed_until else None},
    )
    _email_staff(request)
    return request


@transaction.atomic
def quota_request_approve(
    *,
    actor: User,
    request: QuotaRequest,
    gpu_quota: int,
    expires_at: datetime | None = None,
    note: str = "",
) -> QuotaRequest:
    """Approve: the organization's quota becomes `gpu_quota`, until `expires_at` when one is given."""
    require_staff_admin(actor, WHAT)
    request = pending_locked(request, "quota request", "requested_by")
    organization = Organization.objects.select_for_update().get(pk=request.organization_id)
    if gpu_quota <= organization.gpu_quota:
        already = f"The quota is already {organization.gpu_quota}"
        raise ValidationError({"gpu_quota": f"{already}; grant more, or reject the request."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "Choose an expiry in the future, or none."})
    before = organization.gpu_quota
    organization.gpu_quota = gpu_quota
    organization.save(update_fields=["gpu_quota"])
    # What the quota goes back to when this one expires: the quota just before it.
    request.quota_before, request.expires_at = before, expires_at
    decide(request, actor, ApplicationStatus.APPROVED, note, gpu_quota, ("quota_before", "expires_at"))
    audit_record(
        actor=actor,
        action="quota_request.approve",
        obj=request,
        organization=organization,
        before={"gpu_quota": before},
        after={"gpu_quota": gpu_quota, "expires_at": expires_at.isoformat() if expires_at else None},
    )
    until = f" until {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
    _email_requester(
        request,
        "approved",
        f"{organization.name} may now hold up to {gpu_quota} GPUs at once{until}.\n\n{note}\n",
    )
    return request


@transaction.atomic
def quota_request_reject(*, actor: User, request: QuotaRequest, note: str) -> QuotaRequest:
    """Reject with a note the owner who asked receives."""
    require_staff_admin(actor, WHAT)
    if not note.strip():
        raise ValidationError({"note": "Say why the request is rejected; the owner reads this."})
    request = pending_locked(request, "quota request", "requested_by")
    decide(request, actor, ApplicationStatus.REJECTED, note, None)
    audit_record(
        actor=actor,
        action="quota_request.reject",
        obj=request,
        organization=request.organization,
        after={"note": note},
    )
    _email_requester(
        request, "not approved", f"Your request for {request.gpus} GPUs was not approved.\n\n{note}\n"
    )
    return request


def quota_requests_expire(*, now: datetime | None = None) -> int:
    """Give back the quota of every approval past its expiry; returns how many went back.

    Each in its own transaction, the request locked and skipped when another sweeper holds it. The
    quota goes back only when it is still the one granted: a later change by staff stands.
    """
    now = now or timezone.now()
    due = QuotaRequest.objects.filter(
        status=ApplicationStatus.APPROVED, expired_at__isnull=True, expires_at__lte=now
    ).values_list("pk", flat=True)
    expired = 0
    for pk in list(due[:500]):
        expired += _expire_one(pk, now)
    return expired


@transaction.atomic
def _expire_one(pk: int, now: datetime) -> int:
    request = (
        QuotaRequest.objects.select_for_update(skip_locked=True)
        .select_related("requested_by")
        .filter(pk=pk, expired_at__isnull=True)
        .first()
    )
    if request is None:
        return 0
    organization = Organization.objects.select_for_update().get(pk=request.organization_id)
    before = organization.gpu_quota
    if organization.gpu_quota == request.granted_gpu_quota:
        organization.gpu_quota = request.quota_before
        organization.save(update_fields=["gpu_quota"])
    request.expired_at = now
    request.save(update_fields=["expired_at"])
    audit_record(
        actor=None,
        action="quota_request.expire",
        obj=request,
        organization=organization,
        before={"gpu_quota": before},
        after={"gpu_quota": organization.gpu_quota},
    )
    _email_requester(
        request,
        "expired",
        f"The quota of {request.granted_gpu_quota} GPUs granted to {organization.name} has expired; "
        f"its quota is {organization.gpu_quota} GPUs again.\n",
    )
    return 1


def _email_requester(request: QuotaRequest, outcome: str, body: str) -> None:
    subject = f"Your Voltpark quota request for {request.organization.name} was {outcome}"
    email_after_commit(subject, body, [request.requested_by.email])


def _email_staff(request: QuotaRequest) -> None:
    """Every staff admin, and the owner who asked (a receipt)."""
    staff = list(
        User.objects.filter(is_staff=True, is_active=True).exclude(email="").values_list("email", flat=True)
    )
    name, gpus, asker = request.organization.name, request.gpus, request.requested_by.email
    until = f" until {request.needed_until:%Y-%m-%d}" if request.needed_until else ""
    link = f"{settings.SITE_URL.rstrip('/')}{reverse('early-stage-queue')}"
    body = (
        f"{asker} asks for a quota of {gpus} GPUs for {name} (now {request.quota_before}){until}.\n\n"
        f"Why: {request.why}\n\nDecide in the queue: {link}\n"
    )
    receipt = (
        f"We received your request for a quota of {gpus} GPUs for {name}{until}. "
        "Staff usually answer within a working day; you are emailed when they decide.\n"
    )

    def send() -> None:
        if staff:
            send_mail(f"Quota request: {name} asks for {gpus} GPUs", body, None, staff)
        send_mail(f"Your Voltpark quota request for {name} was received", receipt, None, [asker])

    transaction.on_commit(send)
