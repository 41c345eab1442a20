"""Sign-up."""

from django.contrib.auth import login
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.forms.auth import SignUpForm
from accounts.models import User
from accounts.services.organizations import (
    organization_create,
)


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
