"""Quota request pages: an owner asks for more (from the booking page's refusal, or here) and sees
the answers; staff admins decide in the decision queue (queue.py)."""

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
from core.forms import add_service_error
from programs.choices import ApplicationStatus
from programs.forms.quota_requests import QuotaRequestForm
from programs.models import QuotaRequest
from programs.selectors.quota_requests import quota_requests_of
from programs.services.quota_requests import quota_request_approve, quota_request_create, quota_request_reject
from programs.views.queue import quota_approve_form, refused, reject_form, render_queue


@organization_role_required(ROLES_THAT_BOOK)
def quota(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The organization's quota, its requests and their answers; the form for owners while none waits."""
    viewer = viewer_of(request)
    organization = viewer.organization
    assert organization is not None
    requests = list(quota_requests_of(organization))
    pending = any(r.status == ApplicationStatus.PENDING for r in requests)
    may_ask = viewer.is_owner and not pending
    asked = request.GET.get("gpus", "")
    initial = {"gpus": int(asked)} if asked.isdigit() and 0 < int(asked) <= 100_000 else {}
    form = QuotaRequestForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if not may_ask:
            raise PermissionDenied("Only an owner may ask for more quota, while no request is waiting.")
        if form.is_valid():
            try:
                quota_request_create(actor=request.user, organization=organization, **form.cleaned_data)
            except ValidationError as error:
                add_service_error(form, error)
            else:
                messages.success(
                    request, "Request sent. Staff usually answer within a working day; you are emailed."
                )
                return redirect("quota")
    context = {
        "org": organization,
        "requests": requests,
        "form": form,
        "may_ask": may_ask,
        "pending": pending,
    }
    return render(request, "accounts/quota.html", context, status=400 if form.errors else 200)


def _request_or_404(request_id: str) -> QuotaRequest:
    return get_by_public_id_or_404(QuotaRequest.objects.select_related("organization"), request_id)


@staff_admin_required
@require_POST
def quota_request_approve_page(request: AuthenticatedHttpRequest, request_id: str) -> HttpResponse:
    """Approve: the quota asked (or another), until an optional expiry day."""
    quota_request = _request_or_404(request_id)
    form = quota_approve_form(quota_request, request.POST)
    if not form.is_valid():
        return render_queue(request, bound=form, status=400)
    try:
        quota_request_approve(
            actor=request.user,
            request=quota_request,
            gpu_quota=form.cleaned_data["gpu_quota"],
            expires_at=form.expires_at,
            note=form.cleaned_data["note"],
        )
    except ValidationError as error:
        return refused(request, form, error)
    messages.success(
        request,
        f"{quota_request.organization.name} now has a quota of {form.cleaned_data['gpu_quota']} GPUs.",
    )
    return redirect("early-stage-queue")


@staff_admin_required
@require_POST
def quota_request_reject_page(request: AuthenticatedHttpRequest, request_id: str) -> HttpResponse:
    """Reject with a note the owner receives."""
    quota_request = _request_or_404(request_id)
    form = reject_form(quota_request, request.POST)
    if not form.is_valid():
        return render_queue(request, bound=form, status=400)
    try:
        quota_request_reject(actor=request.user, request=quota_request, note=form.cleaned_data["note"])
    except ValidationError as error:
        return refused(request, form, error)
    messages.success(request, f"The quota request of {quota_request.organization.name} was rejected.")
    return redirect("early-stage-queue")
