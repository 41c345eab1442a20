"""Pages for sign-up, invitations, the organization, SSH keys and API tokens."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.choices import Role
from accounts.context import current_organization, switch_organization
from accounts.forms import ApiTokenForm, InvitationForm, SignUpForm, SshKeyForm
from accounts.models import User
from accounts.selectors import (
    api_token_of_user_or_404,
    api_tokens_of,
    members_of,
    organization_for_user_or_404,
    pending_invitations_of,
    role_in,
    ssh_key_of_user_or_404,
    ssh_keys_of,
)
from accounts.services.organizations import invitation_accept, invitation_create, organization_create
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
    return redirect(request.POST.get("next") or "home")


@login_required
def organization_settings(request: HttpRequest) -> HttpResponse:
    """Members, roles and invitations of the current organization."""
    org = current_organization(request)
    if org is None:
        return redirect("home")
    is_owner = role_in(request.user, org) == Role.OWNER
    form = InvitationForm(request.POST or None)
    if request.method == "POST" and is_owner and form.is_valid():
        try:
            issued = invitation_create(actor=request.user, organization=org, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Invitation sent to {issued.invitation.email}.")
            return redirect("organization-settings")
    context = {
        "org": org,
        "is_owner": is_owner,
        "form": form,
        "members": members_of(org),
        "invitations": pending_invitations_of(org),
    }
    return render(request, "accounts/organization.html", context)


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


@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    """The user's API tokens; a new one is shown once."""
    form = ApiTokenForm(request.POST or None)
    secret = None
    org = current_organization(request)
    if request.method == "POST" and form.is_valid():
        try:
            secret = api_token_create(
                user=request.user, organization=org, name=form.cleaned_data["name"]
            ).secret
        except ValidationError as error:
            form.add_error(None, error)
    context = {"form": form, "secret": secret, "tokens": api_tokens_of(request.user), "org": org}
    return render(request, "accounts/api_tokens.html", context)


@login_required
@require_POST
def api_token_remove(request: HttpRequest, token_id: str) -> HttpResponse:
    """Revoke one of the user's tokens."""
    api_token_revoke(actor=request.user, token=api_token_of_user_or_404(request.user, token_id))
    messages.success(request, "Token revoked; it no longer works.")
    return redirect("api-tokens")
