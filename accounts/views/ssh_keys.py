"""The SSH keys page: add and remove the user's public keys."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.forms.ssh_keys import SshKeyForm
from accounts.selectors.ssh_keys import ssh_key_of_user_or_404, ssh_keys_of
from accounts.services.ssh_keys import ssh_key_add, ssh_key_delete
from accounts.views.decorators import AuthenticatedHttpRequest


@login_required
def ssh_keys(request: AuthenticatedHttpRequest) -> HttpResponse:
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
def ssh_key_remove(request: AuthenticatedHttpRequest, key_id: str) -> HttpResponse:
    """Remove one of the user's keys."""
    ssh_key_delete(user=request.user, key=ssh_key_of_user_or_404(request.user, key_id))
    messages.success(request, "Key removed.")
    return redirect("ssh-keys")
