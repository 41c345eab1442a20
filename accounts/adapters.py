"""django-allauth's hooks into our accounts: the person's name at sign-up and the welcome page after
it, a 429 when log-ins are locked, staff sent to set up a second factor, the QR code inline, and an
audit row for every log-in, every wrong password or code and every change of a second factor.

Like admin.py, this module sits above the services and calls them; allauth calls it.
"""

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.authentication import get_authentication_records
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.mfa import signals as mfa_signals
from allauth.mfa.adapter import DefaultMFAAdapter
from django import forms
from django.contrib import messages
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from accounts.models import User
from accounts.selectors.staff import staff_without_mfa
from accounts.services.auth import login_failure_record, login_record, mfa_change_record
from accounts.views.auth import too_many_requests
from accounts.views.decorators import STAFF_MFA_NEEDED


class AccountAdapter(DefaultAccountAdapter):
    """Our behaviour around allauth's account flows."""

    def save_user(self, request: HttpRequest, user: Any, form: BaseForm, commit: bool = True) -> Any:
        user.full_name = form.cleaned_data.get("full_name", "")
        return super().save_user(request, user, form, commit)

    def get_signup_redirect_url(self, request: HttpRequest) -> str:
        # A new person lands on the welcome page: it creates their organization (or points them to
        # their invitation) and says what to do next. A `next` (an invitation's link) still wins.
        return reverse("welcome")

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        # allauth refuses a locked account with a form error (a 200); a client, a proxy and the
        # person all read a 429 with Retry-After better, so the lock-out answers that instead.
        try:
            super().pre_authenticate(request, **credentials)
        except forms.ValidationError:
            raise ImmediateHttpResponse(too_many_requests(request, action="login_failed")) from None

    def authentication_failed(self, request: HttpRequest, **credentials: Any) -> None:
        login_failure_record(email=str(credentials.get("email", "")), ip=self.get_client_ip(request))

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        if staff_without_mfa(request.user):
            messages.warning(request, STAFF_MFA_NEEDED)
            return reverse("mfa_index")
        return super().get_login_redirect_url(request)

    def post_login(self, request: HttpRequest, user: Any, **kwargs: Any) -> HttpResponse:
        response = super().post_login(request, user, **kwargs)
        method = "signup" if kwargs.get("signup") else _methods(request, user)
        login_record(user=user, method=method, ip=self.get_client_ip(request))
        return response


def _methods(request: HttpRequest, user: User) -> str:
    """How this session signed in, in order: "password", "password,mfa", "socialaccount", "mfa"."""
    methods = [str(record["method"]) for record in get_authentication_records(request, user)]
    return ",".join(dict.fromkeys(methods)) or "unknown"


class MfaAdapter(DefaultMFAAdapter):
    """allauth.mfa with the authenticator app's QR code as an inline <svg> element."""

    def build_totp_svg(self, url: str) -> str:
        # Without the XML declaration, so the page can hold it inline: an <img> from a data: URL
        # would need the content security policy relaxed for images.
        svg = super().build_totp_svg(url)
        return svg[svg.index("<svg") :]


MFA_CHANGES = {
    mfa_signals.authenticator_added: "mfa.add",
    mfa_signals.authenticator_removed: "mfa.remove",
    mfa_signals.authenticator_reset: "mfa.reset",
    mfa_signals.authentication_failed: "user.mfa_failed",
}


def connect_mfa_audit() -> None:
    """Audit allauth.mfa's changes; its views announce them only by signal (called at start-up)."""
    for signal, action in MFA_CHANGES.items():
        signal.connect(_mfa_receiver(action), dispatch_uid=f"accounts.audit.{action}", weak=False)


def _mfa_receiver(action: str) -> Any:
    def receive(
        sender: object, request: HttpRequest, user: User, authenticator: Any, **kwargs: object
    ) -> None:
        ip = AccountAdapter(request).get_client_ip(request)
        mfa_change_record(user=user, action=action, kind=str(authenticator.type), ip=ip)

    return receive
