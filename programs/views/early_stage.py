"""Early-stage program pages: an owner's application, and staff admins' decisions on it (the queue
they decide in: queue.py)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.choices import ROLES_THAT_BOOK
from accounts.selectors.viewer import viewer_of
from accounts.views.decorators import (
    AuthenticatedHttpRequest,
    organization_role_required,
    staff_admin_required,
)
from core.db import get_by_public_id_or_404
from programs.choices import ApplicationStatus
from programs.forms.early_stage import EarlyStageApplicationForm
from programs.models import EarlyStageApplication
from programs.selectors.early_stage import early_stage_applications_of
from programs.services.early_stage import early_stage_apply, early_stage_approve, early_stage_reject
from programs.views.queue import application_approve_form, refused, reject_form, render_queue


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


def _pending_or_404(application_id: str) -> EarlyStageApplication:
    return get_by_public_id_or_404(
        EarlyStageApplication.objects.select_related("organization"), application_id
    )


@staff_admin_required
@require_POST
def early_stage_approve_page(request: AuthenticatedHttpRequest, application_id: str) -> HttpResponse:
    """Approve in one step: quota, the early-stage pool and a credit grant."""
    application = _pending_or_404(application_id)
    form = application_approve_form(application, request.POST)
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
        return refused(request, form, error)
    messages.success(request, f"{application.organization.name} is approved for the early-stage program.")
    return redirect("early-stage-queue")


@staff_admin_required
@require_POST
def early_stage_reject_page(request: AuthenticatedHttpRequest, application_id: str) -> HttpResponse:
    """Reject in one step, with a note the applicant receives."""
    application = _pending_or_404(application_id)
    form = reject_form(application, request.POST)
    if not form.is_valid():
        return render_queue(request, bound=form, status=400)
    try:
        early_stage_reject(actor=request.user, application=application, note=form.cleaned_data["note"])
    except ValidationError as error:
        return refused(request, form, error)
    messages.success(request, f"The application of {application.organization.name} was rejected.")
    return redirect("early-stage-queue")
