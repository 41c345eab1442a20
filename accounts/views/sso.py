"""Single sign-on pages: where a member is sent when their organization requires a provider they
have not signed in with this session, the owner's switch, and the middleware that sends them."""

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.choices import Role, SsoProvider
from accounts.forms.sso import SsoRequireForm
from accounts.selectors.sso import sso_linked, sso_providers_on, sso_unmet
from accounts.selectors.viewer import viewer_of
from accounts.services.organizations import organization_sso_require
from accounts.views.decorators import (
    AuthenticatedHttpRequest,
    acting_organization,
    organization_role_required,
)
from core.forms import add_service_error
from core.refusals import Refused

# Pages a member of an organization that requires a provider may still open before signing in with
# it: this page, the provider's own sign-in and linking (allauth.socialaccount), confirming the
# password for it, logging out, choosing another organization; the API answers by itself
# (accounts.api.permissions), and static files are not pages.
OPEN_PAGES = {"organization-sso", "organization-switch", "account_logout", "account_reauthenticate"}
OPEN_MODULES = ("allauth.socialaccount", "allauth.mfa")
OPEN_PREFIXES = ("/api/", "/static/")


class SsoRequiredMiddleware:
    """Sends a signed-in member of an organization that requires a provider to the SSO page before
    any other page answers, until this session has signed in with (or linked) the provider."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Any, args: object, kwargs: object
    ) -> HttpResponse | None:
        if not request.user.is_authenticated or request.path.startswith(OPEN_PREFIXES):
            return None
        match = request.resolver_match
        if (match and match.url_name in OPEN_PAGES) or str(view.__module__).startswith(OPEN_MODULES):
            return None
        if sso_unmet(request, viewer_of(request).organization) is None:
            return None
        return redirect(f"{reverse('organization-sso')}?next={request.get_full_path()}")


@login_required
def sso_required(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Sign in with (or link) the provider the organization requires, then go on to `next`."""
    organization = viewer_of(request).organization
    target = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("home")
    provider = sso_unmet(request, organization)
    if provider is None or organization is None:
        return redirect(target)
    context = {
        "organization": organization,
        "provider": provider,
        "provider_name": SsoProvider(provider).label,
        "linked": sso_linked(request.user, provider),
        "provider_on": provider in sso_providers_on(request),
        "next": target,
        "other_organizations": [o for o in viewer_of(request).organizations if o.pk != organization.pk],
    }
    return render(request, "accounts/sso_required.html", context, status=403)


@organization_role_required({Role.OWNER})
@require_POST
def sso_require(request: AuthenticatedHttpRequest) -> HttpResponse:
    """An owner requires a provider of the organization's members, or stops requiring one."""
    organization = acting_organization(request)
    form = SsoRequireForm(request.POST, providers=sso_providers_on(request))
    if form.is_valid():
        try:
            organization_sso_require(
                actor=request.user, organization=organization, provider=form.cleaned_data["sso_provider"]
            )
        except Refused as refusal:
            add_service_error(form, refusal)
    if form.errors:
        for errors in form.errors.values():
            messages.error(request, " ".join(str(error) for error in errors))
    else:
        provider = form.cleaned_data["sso_provider"]
        name = SsoProvider(provider).label if provider else ""
        messages.success(
            request,
            f"Members must sign in with {name}." if provider else "Members may sign in with a password.",
        )
    return redirect("organization-settings")
