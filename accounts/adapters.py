"""django-allauth's hooks into our accounts: the person's name at sign-up and the welcome page after
it, a 429 when log-ins are locked, staff sent to set up a second factor, the QR code inline, a 404
for a provider that is switched off, and an audit row for every log-in and log-out, every wrong
password or code, every change of a second factor and every provider's account linked or unlinked.

Like admin.py, this module sits above the services and calls them; allauth calls it.
"""

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.authentication import get_authentication_records
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.mfa import signals as mfa_signals
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.socialaccount import signals as social_signals
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.internal.flows.login import record_authentication
from allauth.socialaccount.models import SocialApp, SocialLogin
from django import forms
from django.contrib import messages
from django.forms import BaseForm
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse

from accounts.models import User
from accounts.selectors.staff import staff_without_mfa
from accounts.services.auth import login_failure_record, login_record, logout_record, mfa_change_record
from accounts.services.sso import sso_link_record
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

    def logout(self, request: HttpRequest) -> None:
        user = request.user
        if isinstance(user, User):
            logout_record(user=user, ip=self.get_client_ip(request))
        super().logout(request)


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


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """allauth's providers: a switched-off one is not found, a new account takes the name the
    provider knows the person by (allauth fills only first and last names, which we do not have),
    and a new account made by signing in with a provider is audited as that provider's link."""

    def populate_user(self, request: HttpRequest, sociallogin: SocialLogin, data: dict[str, Any]) -> Any:
        user = super().populate_user(request, sociallogin, data)
        parts = (data.get("first_name") or "", data.get("last_name") or "")
        name = data.get("name") or " ".join(part for part in parts if part)
        user.full_name = str(name).strip()[: user._meta.get_field("full_name").max_length]
        return user

    def get_app(self, request: HttpRequest, provider: str, client_id: str | None = None) -> SocialApp:
        try:
            return super().get_app(request, provider, client_id)
        except SocialApp.DoesNotExist:
            raise Http404(f"Signing in with {provider} is not switched on.") from None

    def save_user(self, request: HttpRequest, sociallogin: SocialLogin, form: BaseForm | None = None) -> Any:
        user = super().save_user(request, sociallogin, form)
        _link_record(request, sociallogin, linked=True)
        return user


def connect_sso_audit() -> None:
    """Audit a provider's account linked or unlinked (allauth announces them by signal); a link made
    in a signed-in session counts as signing in with the provider in that session, since the person
    has just proven the provider's account is theirs (accounts.selectors.sso)."""
    social_signals.social_account_added.connect(_linked, dispatch_uid="accounts.audit.sso.link", weak=False)
    social_signals.social_account_removed.connect(
        _unlinked, dispatch_uid="accounts.audit.sso.unlink", weak=False
    )


def _linked(sender: object, request: HttpRequest, sociallogin: SocialLogin, **kwargs: object) -> None:
    _link_record(request, sociallogin, linked=True)
    if request.user.is_authenticated and request.user.pk == sociallogin.user.pk:
        record_authentication(request, sociallogin)


def _unlinked(sender: object, request: HttpRequest, socialaccount: Any, **kwargs: object) -> None:
    ip = AccountAdapter(request).get_client_ip(request)
    sso_link_record(
        user=socialaccount.user, provider=socialaccount.provider, uid=socialaccount.uid, linked=False, ip=ip
    )


def _link_record(request: HttpRequest, sociallogin: SocialLogin, *, linked: bool) -> None:
    account = sociallogin.account
    ip = AccountAdapter(request).get_client_ip(request)
    sso_link_record(user=sociallogin.user, provider=account.provider, uid=account.uid, linked=linked, ip=ip)
