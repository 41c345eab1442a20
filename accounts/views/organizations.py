"""Organization pages: the welcome after sign-up (a new organization), switching, members and roles,
invitations."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.choices import ROLES_THAT_BOOK, Role
from accounts.forms.organizations import InvitationForm, MemberForm, MemberRoleForm, OrganizationForm
from accounts.forms.sso import SsoRequireForm
from accounts.models import Invitation, Organization
from accounts.selectors.auth import email_belongs_to, email_is_verified
from accounts.selectors.organizations import (
    invitation_with_hash,
    members_of,
    membership_in_org_or_404,
    organization_for_user_or_404,
    pending_invitation_of_org_or_404,
    pending_invitations_for,
    pending_invitations_of,
)
from accounts.selectors.ssh_keys import ssh_keys_of
from accounts.selectors.sso import sso_providers_on
from accounts.selectors.viewer import switch_organization, viewer_of
from accounts.services.organizations import (
    invitation_accept,
    invitation_create,
    invitation_revoke,
    membership_remove,
    membership_set_role,
    organization_create,
)
from accounts.services.tokens import hash_token
from accounts.views.decorators import (
    AuthenticatedHttpRequest,
    acting_organization,
    organization_role_required,
)
from core.forms import add_service_error
from core.refusals import Refused


@login_required
def welcome(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Where sign-up leads: create an organization (or accept an invitation), then what to do next."""
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                organization = organization_create(owner=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_service_error(form, error)
        else:
            switch_organization(request, organization)
            messages.success(request, f"{organization.name} is ready, and you are its owner.")
            return redirect("welcome")
    viewer = viewer_of(request)
    context = {
        "organization": viewer.organization,
        "can_book": viewer.can_book,
        "form": form,
        "invitations": pending_invitations_for(request.user),
        "verified": email_is_verified(request.user),
        "has_key": ssh_keys_of(request.user).exists(),
    }
    return render(request, "accounts/welcome.html", context, status=400 if form.errors else 200)


def invitation(request: HttpRequest, secret: str) -> HttpResponse:
    """An invitation: who it is for and, for that person signed in with the address verified, Accept."""
    found = invitation_with_hash(hash_token(secret))
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.path)
        try:
            membership = invitation_accept(user=request.user, secret=secret)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("home")
        except Refused as refusal:
            return _invitation_page(request, found, refusal)
        switch_organization(request, membership.organization)
        messages.success(request, f"You joined {membership.organization.name} as {membership.role}.")
        return redirect("home")
    return _invitation_page(request, found)


def _invitation_page(
    request: HttpRequest, found: Invitation | None, refusal: Refused | None = None
) -> HttpResponse:
    user = request.user
    context = {
        "invitation": found,
        "refusal": refusal,
        "addressed_to_viewer": bool(user.is_authenticated and found and email_belongs_to(user, found.email)),
        "verified": bool(user.is_authenticated and found and email_is_verified(user, found.email)),
        "now": timezone.now(),
    }
    status = refusal.status if refusal else (200 if found else 404)
    return render(request, "accounts/invitation.html", context, status=status)


@login_required
@require_POST
def switch(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Choose the organization to act in."""
    switch_organization(request, organization_for_user_or_404(request.user, request.POST.get("slug", "")))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "home"
    return redirect(target)


@organization_role_required(ROLES_THAT_BOOK)
def organization_settings(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Members, roles and invitations of the current organization; owners change them."""
    viewer = viewer_of(request)
    org = acting_organization(request)
    form = InvitationForm(request.POST or None)
    if request.method == "POST":
        if not viewer.is_owner:
            raise PermissionDenied("Only an owner of the organization may invite.")
        if form.is_valid():
            try:
                issued = invitation_create(actor=request.user, organization=org, **form.cleaned_data)
            except ValidationError as error:
                form.add_error("email" if hasattr(error, "error_dict") else None, error.messages)
            else:
                messages.success(request, f"Invitation sent to {issued.invitation.email}.")
                return redirect("organization-settings")
    context = {
        "org": org,
        "is_owner": viewer.is_owner,
        "form": form,
        "members": members_of(org),
        "invitations": pending_invitations_of(org).select_related("invited_by"),
        "role_choices": Role.choices,
        "now": timezone.now(),
        "sso_form": _sso_form(request, org),
    }
    return render(request, "accounts/organization.html", context)


def _sso_form(request: HttpRequest, organization: Organization) -> SsoRequireForm | None:
    """The owner's single sign-on choice, when a provider is switched on (or one is still required)."""
    providers = sso_providers_on(request)
    if not providers and not organization.sso_provider:
        return None
    return SsoRequireForm(initial={"sso_provider": organization.sso_provider}, providers=providers)


@organization_role_required({Role.OWNER})
@require_POST
def member_role(request: AuthenticatedHttpRequest) -> HttpResponse:
    """An owner changes a member's role; the last owner cannot step down."""
    org = acting_organization(request)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles for the member.")
        return redirect("organization-settings")
    membership = membership_in_org_or_404(org, form.cleaned_data["email"])
    try:
        membership_set_role(actor=request.user, membership=membership, role=form.cleaned_data["role"])
    except ValidationError as error:
        messages.error(
            request,
            f"{membership.user.email} stays {membership.get_role_display()}: " + " ".join(error.messages),
        )
    else:
        messages.success(request, f"{membership.user.email} is now {Role(form.cleaned_data['role']).label}.")
    return redirect("organization-settings")


@organization_role_required({Role.OWNER})
@require_POST
def member_remove(request: AuthenticatedHttpRequest) -> HttpResponse:
    """An owner removes a member; the last owner cannot be removed."""
    org = acting_organization(request)
    form = MemberForm(request.POST)
    email = form.cleaned_data["email"] if form.is_valid() else ""
    membership = membership_in_org_or_404(org, email)
    try:
        membership_remove(actor=request.user, membership=membership)
    except ValidationError as error:
        messages.error(request, f"{email} was not removed: " + " ".join(error.messages))
        return redirect("organization-settings")
    if membership.user_id == request.user.pk:
        messages.success(request, f"You left {org.name}.")
        return redirect("home")
    messages.success(request, f"{email} was removed from {org.name}.")
    return redirect("organization-settings")


@organization_role_required({Role.OWNER})
@require_POST
def invitation_remove(request: AuthenticatedHttpRequest, invitation_id: str) -> HttpResponse:
    """An owner revokes a pending invitation; its link stops working."""
    invitation = pending_invitation_of_org_or_404(acting_organization(request), invitation_id)
    try:
        invitation_revoke(actor=request.user, invitation=invitation)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"The invitation for {invitation.email} was revoked.")
    return redirect("organization-settings")
