"""The answer when an account page's rate limit is reached (sign-up, log-in, reset, verification)."""

from datetime import timedelta
from http import HTTPStatus

from allauth.core.internal.ratelimit import parse_rates
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.durations import duration_words

# allauth's rate-limited actions behind each account page, to say how long the wait may be.
ACTIONS_OF_PAGE = {
    "account_login": ("login", "login_failed"),
    "account_signup": ("signup",),
    "account_reset_password": ("reset_password",),
    "account_reset_password_from_key": ("reset_password_from_key",),
    "account_email": ("manage_email", "confirm_email"),
    "account_change_password": ("change_password",),
    "account_reauthenticate": ("reauthenticate",),
}
DEFAULT_WAIT = timedelta(minutes=1)


def too_many_requests(request: HttpRequest, action: str | None = None) -> HttpResponse:
    """429 with Retry-After: the longest window of the limits that may have been reached."""
    wait = _wait(request, action)
    response = render(
        request, "429.html", {"wait": duration_words(wait)}, status=HTTPStatus.TOO_MANY_REQUESTS
    )
    response["Retry-After"] = str(int(wait.total_seconds()))
    return response


def _wait(request: HttpRequest, action: str | None) -> timedelta:
    match = request.resolver_match
    page = (match.url_name if match else None) or ""
    actions = (action,) if action else ACTIONS_OF_PAGE.get(page, ())
    durations = [
        rate.duration for name in actions for rate in parse_rates(settings.ACCOUNT_RATE_LIMITS.get(name))
    ]
    return timedelta(seconds=max(durations)) if durations else DEFAULT_WAIT
