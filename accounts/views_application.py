"""The early-stage program page: an owner applies; everyone who books sees the decision and its note."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.choices import ROLES_THAT_BOOK, ApplicationStatus
from accounts.context import viewer_of
from accounts.decorators import organization_role_required
from accounts.forms_application import EarlyStageApplicationForm
from accounts.selectors import early_stage_applications_of
from accounts.services.early_stage import early_stage_apply


@organization_role_required(ROLES_THAT_BOOK)
def early_stage(request: HttpRequest) -> HttpResponse:
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
