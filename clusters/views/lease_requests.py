"""Queued request pages: queue one and see the organization's requests, watch one, cancel it."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from accounts.choices import ROLES_THAT_BOOK
from accounts.selectors.viewer import viewer_of
from accounts.views.decorators import AuthenticatedHttpRequest, organization_role_required
from clusters.choices import LeaseRequestState
from clusters.forms.lease_requests import LeaseRequestForm
from clusters.models import LeaseRequest
from clusters.selectors.lease_requests import (
    lease_request_of_organization_or_404,
    lease_requests_of,
    queue_position,
)
from clusters.services.lease_requests import lease_request_cancel, lease_request_create
from core.forms import add_service_error
from core.refusals import Refused
from core.timezones import remember_zone, render_in_zone


def _request(request: AuthenticatedHttpRequest, request_id: str) -> LeaseRequest:
    organization = viewer_of(request).organization
    assert organization is not None
    return lease_request_of_organization_or_404(organization, request_id)


@organization_role_required(ROLES_THAT_BOOK)
def lease_request_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The organization's requests, queued first with their place in line; POST queues one."""
    organization = viewer_of(request).organization
    assert organization is not None
    form = LeaseRequestForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        remember_zone(request, form.cleaned_data["tz"])
        created = _create(request, form)
        if created is not None:
            messages.success(
                request, "Queued: it is booked the moment the GPUs are free, and you are emailed."
            )
            return redirect("lease-request-detail", request_id=created.public_id)
    requests = list(lease_requests_of(organization))
    queued = [(r, queue_position(r)) for r in requests if r.state == LeaseRequestState.QUEUED]
    past = [r for r in requests if r.state != LeaseRequestState.QUEUED]
    context = {"form": form, "queued": queued, "past": past, "org": organization}
    return render_in_zone(request, "clusters/lease_request_list.html", context)


def _create(request: AuthenticatedHttpRequest, form: LeaseRequestForm) -> LeaseRequest | None:
    data = form.cleaned_data
    organization = viewer_of(request).organization
    assert organization is not None
    try:
        return lease_request_create(
            user=request.user,
            organization=organization,
            gpus=data["gpus"],
            kind=data["kind"],
            hours=data["hours"],
            region=data["region"],
            not_after=data["not_after"],
            ssh_keys=list(data["ssh_keys"]),
        )
    except (ValidationError, Refused) as error:
        add_service_error(form, error)
    return None


@organization_role_required(ROLES_THAT_BOOK)
def lease_request_detail(request: AuthenticatedHttpRequest, request_id: str) -> HttpResponse:
    """One request: its state and place in line (refreshed while it waits), its lease once booked."""
    return render_in_zone(request, "clusters/lease_request_detail.html", _live(request, request_id))


@organization_role_required(ROLES_THAT_BOOK)
def lease_request_live(request: AuthenticatedHttpRequest, request_id: str) -> HttpResponse:
    """The part of the request page that changes while it waits (htmx polls it)."""
    return render_in_zone(request, "clusters/_lease_request_live.html", _live(request, request_id))


def _live(request: AuthenticatedHttpRequest, request_id: str) -> dict[str, object]:
    found = _request(request, request_id)
    return {
        "lease_request": found,
        "position": queue_position(found),
        "polling": found.state == LeaseRequestState.QUEUED,
        "refresh_s": settings.LEASE_PAGE_REFRESH_S,
    }


@organization_role_required(ROLES_THAT_BOOK)
@require_POST
def lease_request_cancel_view(request: AuthenticatedHttpRequest, request_id: str) -> HttpResponse:
    """Take a queued request out of the queue."""
    found = _request(request, request_id)
    try:
        lease_request_cancel(user=request.user, request=found)
    except Refused as refusal:
        messages.error(request, refusal.detail)
    else:
        messages.success(request, "The request was cancelled.")
    return redirect("lease-request-detail", request_id=found.public_id)
