"""The audit trail page: owners read their organization's trail, filter it and download it."""

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render

from accounts.choices import Role
from accounts.forms.audit import AuditFilterForm
from accounts.selectors.audit import AuditFilter, audit_trail_of
from accounts.views.decorators import (
    AuthenticatedHttpRequest,
    acting_organization,
    organization_role_required,
)

PAGE_ROWS = 50


@organization_role_required({Role.OWNER})
def audit_trail(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The trail, newest first, a page at a time; a bad filter is shown on its field and filters nothing."""
    organization = acting_organization(request)
    form = AuditFilterForm(request.GET or None)
    wanted = form.to_filter() if form.is_valid() else AuditFilter()
    status = 400 if form.is_bound and form.errors else 200
    entries = (
        audit_trail_of(organization, wanted)
        if status == 200
        else audit_trail_of(organization, AuditFilter()).none()
    )
    page = Paginator(entries, PAGE_ROWS).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"org": organization, "form": form, "page": page, "query": query.urlencode()}
    return render(request, "accounts/audit.html", context, status=status)
