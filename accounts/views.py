"""Pages for sign-up, invitations, the organization, SSH keys and API tokens."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.choices import ROLES_THAT_BOOK, Role
from accounts.context import switch_organization, viewer_of
from accounts.decorators import organization_role_required
from accounts.forms import ApiTokenForm, InvitationForm, MemberForm, MemberRoleForm, SignUpForm, SshKeyForm
from accounts.models import User
from accounts.selectors import (
    api_token_of_user_or_404,
    api_tokens_of,
    members_of,
    membership_in_org_or_404,
    organization_for_user_or_404,
    pending_invitation_of_org_or_404,
    pending_invitations_of,
    ssh_key_of_user_or_404,
    ssh_keys_of,
)
from accounts.services.organizations import (
    invitation_accept,
    invitation_create,
    invitation_revoke,
    membership_remove,
    membership_set_role,
    organization_create,
)
from accounts.services.ssh_keys import ssh_key_add, ssh_key_delete
from accounts.services.tokens import api_token_create, api_token_revoke


def signup(request: HttpRequest) -> HttpResponse:
    """Create an account (and an organization it owns) and log in."""
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with transaction.atomic():
            user = User.objects.create_user(data["email"], data["password"], full_name=data["full_name"])
            if data["organization_name"]:
                organization_create(
                    owner=user, name=data["organization_name"], kind=data["organization_kind"] or "startup"
                )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(request.GET.get("next") or "home")
    return render(request, "accounts/signup.html", {"form": form})


def invitation(request: HttpRequest, secret: str) -> HttpResponse:
    """Accept an invitation: log in or sign up first, then join."""
    if not request.user.is_authenticated:
        messages.info(request, "Log in or sign up with the invited email, then open the link again.")
        return redirect(f"/login/?next={request.path}")
    if request.method == "POST":
        try:
            membership = invitation_accept(user=request.user, secret=secret)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("home")
        switch_organization(request, membership.organization)
        messages.success(request, f"You joined {membership.organization.name} as {membership.role}.")
        return redirect("home")
    return render(request, "accounts/invitation.html")


@login_required
@require_POST
def switch(request: HttpRequest) -> HttpResponse:
    """Choose the organization to act in."""
    switch_organization(request, organization_for_user_or_404(request.user, request.POST.get("slug", "")))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "home"
    return redirect(target)


@organization_role_required(ROLES_THAT_BOOK)
def organization_settings(request: HttpRequest) -> HttpResponse:
    """Members, roles and invitations of the current organization; owners change them."""
    viewer = viewer_of(request)
    org = viewer.organization
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
    }
    return render(request, "accounts/organization.html", context)


@organization_role_required({Role.OWNER})
@require_POST
def member_role(request: HttpRequest) -> HttpResponse:
    """An owner changes a member's role; the last owner cannot step down."""
    org = viewer_of(request).organization
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
def member_remove(request: HttpRequest) -> HttpResponse:
    """An owner removes a member; the last owner cannot be removed."""
    org = viewer_of(request).organization
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
def invitation_remove(request: HttpRequest, invitation_id: str) -> HttpResponse:
    """An owner revokes a pending invitation; its link stops working."""
    invitation = pending_invitation_of_org_or_404(viewer_of(request).organization, invitation_id)
    try:
        invitation_revoke(actor=request.user, invitation=invitation)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"The invitation for {invitation.email} was revoked.")
    return redirect("organization-settings")


@login_required
def ssh_keys(request: HttpRequest) -> HttpResponse:
    """The user's SSH keys; add one."""
    form = SshKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            key = ssh_key_add(user=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_error("public_key", error.message_dict["public_key"])
        else:
            messages.success(request, f"Key {key.name} added ({key.fingerprint}).")
            return redirect("ssh-keys")
    return render(request, "accounts/ssh_keys.html", {"form": form, "keys": ssh_keys_of(request.user)})


@login_required
@require_POST
def ssh_key_remove(request: HttpRequest, key_id: str) -> HttpResponse:
    """Remove one of the user's keys."""
    ssh_key_delete(user=request.user, key=ssh_key_of_user_or_404(request.user, key_id))
    messages.success(request, "Key removed.")
    return redirect("ssh-keys")


NEW_TOKEN_SESSION_KEY = "new_api_token"


@never_cache
@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    """The user's API tokens; a new one is shown once, on the page the creation redirects to."""
    form = ApiTokenForm(request.POST or None)
    org = viewer_of(request).organization
    if request.method == "POST" and form.is_valid():
        try:
            issued = api_token_create(user=request.user, organization=org, name=form.cleaned_data["name"])
        except ValidationError as error:
            form.add_error(None, error)
        else:
            # Redirect-after-POST so a reload cannot make a second token; the secret rides in the
            # session only until the next page shows it.
            request.session[NEW_TOKEN_SESSION_KEY] = issued.secret
            return redirect("api-tokens")
    secret = request.session.pop(NEW_TOKEN_SESSION_KEY, None) if request.method == "GET" else None
    context = {"form": form, "secret": secret, "tokens": api_tokens_of(request.user), "org": org}
    return render(request, "accounts/api_tokens.html", context)


@login_required
@require_POST
def api_token_remove(request: HttpRequest, token_id: str) -> HttpResponse:
    """Revoke one of the user's tokens."""
    api_token_revoke(actor=request.user, token=api_token_of_user_or_404(request.user, token_id))
    messages.success(request, "Token revoked; it no longer works.")
    return redirect("api-tokens")
