"""Staff pages about organizations: the early-stage queue, where applications are approved or rejected."""

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.decorators import staff_admin_required
from accounts.forms_staff import ApproveForm, RejectForm
from accounts.models import AuditEntry, EarlyStageApplication
from accounts.selectors import early_stage_queue, get_by_public_id_or_404
from accounts.selectors_staff import early_stage_histories, early_stage_recent_decisions
from accounts.services.early_stage import early_stage_approve, early_stage_reject


@dataclass(frozen=True)
class QueueCard:
    """One waiting application with its history and its two decision forms."""

    application: EarlyStageApplication
    history: list[AuditEntry]
    approve: ApproveForm
    reject: RejectForm


def _approve_form(application: EarlyStageApplication, data: object = None) -> ApproveForm:
    initial = ApproveForm.initial_for(application.gpus_wanted, application.organization.gpu_quota)
    return ApproveForm(data, prefix=f"approve-{application.public_id}", initial=initial)


def _reject_form(application: EarlyStageApplication, data: object = None) -> RejectForm:
    return RejectForm(data, prefix=f"reject-{application.public_id}")


def _render_queue(
    request: HttpRequest, bound: ApproveForm | RejectForm | None = None, status: int = 200
) -> HttpResponse:
    applications = list(early_stage_queue())
    histories = early_stage_histories(applications)
    cards = []
    for application in applications:
        approve, reject = _approve_form(application), _reject_form(application)
        if isinstance(bound, ApproveForm) and bound.prefix == approve.prefix:
            approve = bound
        if isinstance(bound, RejectForm) and bound.prefix == reject.prefix:
            reject = bound
        cards.append(QueueCard(application, histories.get(application.organization_id, []), approve, reject))
    context = {"cards": cards, "decided": early_stage_recent_decisions()}
    return render(request, "staff/early_stage_queue.html", context, status=status)


@staff_admin_required
def early_stage_queue_page(request: HttpRequest) -> HttpResponse:
    """Applications waiting for a decision, oldest first, each with what was asked and its history."""
    return _render_queue(request)


def _pending_or_404(application_id: str) -> EarlyStageApplication:
    return get_by_public_id_or_404(
        EarlyStageApplication.objects.select_related("organization"), application_id
    )


def _refused(request: HttpRequest, form: ApproveForm | RejectForm, error: ValidationError) -> HttpResponse:
    """A service's refusal: next to its field when it names one, else above the form."""
    if hasattr(error, "error_dict"):
        for field, problems in error.message_dict.items():
            form.add_error(field if field in form.fields else None, problems)
        return _render_queue(request, bound=form, status=400)
    messages.error(request, " ".join(error.messages))
    return redirect("early-stage-queue")


@staff_admin_required
@require_POST
def early_stage_approve_page(request: HttpRequest, application_id: str) -> HttpResponse:
    """Approve in one step: quota, the early-stage pool and a credit grant."""
    application = _pending_or_404(application_id)
    form = _approve_form(application, request.POST)
    if not form.is_valid():
        return _render_queue(request, bound=form, status=400)
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
def early_stage_reject_page(request: HttpRequest, application_id: str) -> HttpResponse:
    """Reject in one step, with a note the applicant receives."""
    application = _pending_or_404(application_id)
    form = _reject_form(application, request.POST)
    if not form.is_valid():
        return _render_queue(request, bound=form, status=400)
    try:
        early_stage_reject(actor=request.user, application=application, note=form.cleaned_data["note"])
    except ValidationError as error:
        return _refused(request, form, error)
    messages.success(request, f"The application of {application.organization.name} was rejected.")
    return redirect("early-stage-queue")
