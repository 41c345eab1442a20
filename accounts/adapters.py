"""django-allauth's hooks into our accounts: the person's name at sign-up, a 429 when log-ins are
locked, and an audit row for every log-in and every wrong password.

Like admin.py, this module sits above the services and calls them; allauth calls it.
"""

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.authentication import get_authentication_records
from allauth.core.exceptions import ImmediateHttpResponse
from django import forms
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse

from accounts.models import User
from accounts.services.auth import login_failure_record, login_record
from accounts.views.auth import too_many_requests


class AccountAdapter(DefaultAccountAdapter):
    """Our behaviour around allauth's account flows."""

    def save_user(self, request: HttpRequest, user: Any, form: BaseForm, commit: bool = True) -> Any:
        user.full_name = form.cleaned_data.get("full_name", "")
        return super().save_user(request, user, form, commit)

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        # allauth refuses a locked account with a form error (a 200); a client, a proxy and the
        # person all read a 429 with Retry-After better, so the lock-out answers that instead.
        try:
            super().pre_authenticate(request, **credentials)
        except forms.ValidationError:
            raise ImmediateHttpResponse(too_many_requests(request, action="login_failed")) from None

    def authentication_failed(self, request: HttpRequest, **credentials: Any) -> None:
        login_failure_record(email=str(credentials.get("email", "")), ip=self.get_client_ip(request))

    def post_login(self, request: HttpRequest, user: Any, **kwargs: Any) -> HttpResponse:
        response = super().post_login(request, user, **kwargs)
        method = "signup" if kwargs.get("signup") else _methods(request, user)
        login_record(user=user, method=method, ip=self.get_client_ip(request))
        return response


def _methods(request: HttpRequest, user: User) -> str:
    """How this session signed in, in order: "password", "password,mfa", "socialaccount", "mfa"."""
    methods = [str(record["method"]) for record in get_authentication_records(request, user)]
    return ",".join(dict.fromkeys(methods)) or "unknown"
