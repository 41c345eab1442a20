"""Early-stage program pages: an owner's application, and the staff admins' queue, which also holds
the quota requests (decided by programs/views/quota_requests.py)."""

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.choices import ROLES_THAT_BOOK
from accounts.models import AuditEntry
from accounts.selectors.viewer import viewer_of
from accounts.views.decorators import (
    AuthenticatedHttpRequest,
    organization_role_required,
    staff_admin_required,
)
from core.db import get_by_public_id_or_404
from core.forms import add_service_error
from programs.choices import ApplicationStatus
from programs.forms.early_stage import ApproveForm, EarlyStageApplicationForm, RejectForm
from programs.forms.quota_requests import QuotaApproveForm
from programs.models import EarlyStageApplication, QuotaRequest
from programs.selectors.early_stage import (
    early_stage_applications_of,
    early_stage_histories,
    early_stage_queue,
    early_stage_recent_decisions,
)
from programs.selectors.quota_requests import (
    quota_request_histories,
    quota_request_queue,
    quota_request_recent_decisions,
)
from programs.services.early_stage import early_stage_apply, early_stage_approve, early_stage_reject


@organization_role_required(ROLES_THAT_BOOK)
def early_stage(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The organization's applications with their status and note; the form while one may apply."""
    viewer = viewer_of(request)
    organization = viewer.organization
    assert organization is not None
    applications = list(early_stage_applications_of(organization).select_related("decided_by"))
    pending = any(a.status == ApplicationStatus.PENDING for a in applications)
    may_apply = viewer.is_owner and not pending and not organization.early_stage_approved
    form = EarlyStageApplicationForm(request.POST or None)
    if request.method == "POST":
        if not may_apply:
            raise PermissionDenied("Only an owner may apply, once, while no application is waiting.")
        if form.is_valid():
            try:
                early_stage_apply(actor=request.user, organization=organization, **form.cleaned_data)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, "Application sent. We usually answer within two working days.")
                return redirect("early-stage")
    context = {"org": organization, "applications": applications, "form": form, "may_apply": may_apply}
    return render(request, "accounts/early_stage.html", context)


@dataclass(frozen=True)
class QueueCard:
    """One waiting application with its history and its two decision forms."""

    application: EarlyStageApplication
    history: list[AuditEntry]
    approve: ApproveForm
    reject: RejectForm


def _approve_form(application: EarlyStageApplication, data: QueryDict | None = None) -> ApproveForm:
    initial = ApproveForm.initial_for(application.gpus_wanted, application.organization.gpu_quota)
    return ApproveForm(data, prefix=f"approve-{application.public_id}", initial=initial)


def _reject_form(application: EarlyStageApplication, data: QueryDict | None = None) -> RejectForm:
    return RejectForm(data, prefix=f"reject-{application.public_id}")


@dataclass(frozen=True)
class QuotaCard:
    """One waiting quota request with its history and its two decision forms."""

    request: QuotaRequest
    history: list[AuditEntry]
    approve: QuotaApproveForm
    reject: RejectForm


def quota_approve_form(quota_request: QuotaRequest, data: QueryDict | None = None) -> QuotaApproveForm:
    initial = {"gpu_quota": quota_request.gpus, "expires_on": quota_request.needed_until}
    return QuotaApproveForm(data, prefix=f"quota-approve-{quota_request.public_id}", initial=initial)


def quota_reject_form(quota_request: QuotaRequest, data: QueryDict | None = None) -> RejectForm:
    return RejectForm(data, prefix=f"quota-reject-{quota_request.public_id}")


Bound = ApproveForm | RejectForm | QuotaApproveForm | None


def render_queue(request: AuthenticatedHttpRequest, bound: Bound = None, status: int = 200) -> HttpResponse:
    """The queue: applications and quota requests, each with its forms (`bound`: the one just posted)."""

    def pick(form: Any, bound: Bound) -> Any:
        return (
            bound if bound is not None and type(bound) is type(form) and bound.prefix == form.prefix else form
        )

    applications = list(early_stage_queue())
    histories = early_stage_histories(applications)
    cards = [
        QueueCard(
            application,
            histories.get(application.organization_id, []),
            pick(_approve_form(application), bound),
            pick(_reject_form(application), bound),
        )
        for application in applications
    ]
    requests = list(quota_request_queue())
    quota_histories = quota_request_histories(requests)
    quota_cards = [
        QuotaCard(
            quota_request,
            quota_histories.get(quota_request.organization_id, []),
            pick(quota_approve_form(quota_request), bound),
            pick(quota_reject_form(quota_request), bound),
        )
        for quota_request in requests
    ]
    context = {
        "cards": cards,
        "quota_cards": quota_cards,
        "decided": early_stage_recent_decisions(),
        "quota_decided": quota_request_recent_decisions(),
    }
    return render(request, "staff/early_stage_queue.html", context, status=status)


@staff_admin_required
def early_stage_queue_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Applications and quota requests waiting for a decision, oldest first, each with its history."""
    return render_queue(request)


def _pending_or_404(application_id: str) -> EarlyStageApplication:
    return get_by_public_id_or_404(
        EarlyStageApplication.objects.select_related("organization"), application_id
    )


def _refused(
    request: AuthenticatedHttpRequest, form: ApproveForm | RejectForm, error: ValidationError
) -> HttpResponse:
    """A service's refusal: next to its field when it names one, else a message above the queue."""
    if hasattr(error, "error_dict"):
        add_service_error(form, error)
        return render_queue(request, bound=form, status=400)
    messages.error(request, " ".join(error.messages))
    return redirect("early-stage-queue")


@staff_admin_required
@require_POST
def early_stage_approve_page(request: AuthenticatedHttpRequest, application_id: str) -> HttpResponse:
    """Approve in one step: quota, the early-stage pool and a credit grant."""
    application = _pending_or_404(application_id)
    form = _approve_form(application, request.POST)
    if not form.is_valid():
        return render_queue(request, bound=form, status=400)
    try:
        early_stage_approve(
            actor=request.user,
            application=application,
            gpu_quota=form.cleaned_data["gpu_quota"],
            credit_amount=form.cleaned_data["credit_amount"],
            credit_expires_at=form.credit_expires_at,
            note=form.cleaned_data["note"],
        )
    except ValidationError as error:
        return _refused(request, form, error)
    messages.success(request, f"{application.organization.name} is approved for the early-stage program.")
    return redirect("early-stage-queue")


@staff_admin_required
@require_POST
def early_stage_reject_page(request: AuthenticatedHttpRequest, application_id: str) -> HttpResponse:
    """Reject in one step, with a note the applicant receives."""
    application = _pending_or_404(application_id)
    form = _reject_form(application, request.POST)
    if not form.is_valid():
        return render_queue(request, bound=form, status=400)
    try:
        early_stage_reject(actor=request.user, application=application, note=form.cleaned_data["note"])
    except ValidationError as error:
        return _refused(request, form, error)
    messages.success(request, f"The application of {application.organization.name} was rejected.")
    return redirect("early-stage-queue")
