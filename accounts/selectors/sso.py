"""Single sign-on: which providers are switched on, and whether a request meets the sign-on its
organization requires.

A browser session meets it once it has signed in with the provider, or linked it, this session
(allauth's authentication records). An API token meets it when its user has linked the provider
and the token was made after the requirement was switched on: every token made since was made on
an organization page, which only a session signed in with the provider reaches, and tokens made
before (perhaps by a session signed in with a password alone) stop answering.
"""

from allauth.account.authentication import get_authentication_records
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.models import SocialAccount
from django.http import HttpRequest

from accounts.choices import SsoProvider
from accounts.models import ApiToken, Organization, User


def sso_providers_on(request: HttpRequest | None = None) -> list[str]:
    """The providers whose client id and secret are set, in the order of SsoProvider."""
    configured = {app.provider for app in get_adapter().list_apps(request)}
    return [provider for provider in SsoProvider.values if provider in configured]


def sso_linked(user: User, provider: str) -> bool:
    """Whether the user has linked an account of `provider`."""
    return SocialAccount.objects.filter(user_id=user.pk, provider=provider).exists()


def session_signed_in_with(request: HttpRequest, provider: str) -> bool:
    """Whether this browser session signed in with (or linked) `provider`."""
    records = get_authentication_records(request, request.user)
    return any(r.get("method") == "socialaccount" and r.get("provider") == provider for r in records)


def sso_unmet(request: HttpRequest, organization: Organization | None) -> str | None:
    """The provider `organization` requires that this request has not signed in with, else None."""
    provider = organization.sso_provider if organization else ""
    if not provider or organization is None:
        return None
    token = getattr(request, "auth", None)
    if isinstance(token, ApiToken):
        since = organization.sso_required_since
        made_after = since is None or token.created_at >= since
        return None if made_after and sso_linked(token.user, provider) else provider
    return None if session_signed_in_with(request, provider) else provider
