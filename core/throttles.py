"""The API's throttles, counted in the cache (Redis): per token and per client address.

A view names what it does with `throttle_scope` (one scope for every method) or
`throttle_scopes` (a scope per HTTP method, as when a list is free to read and booking is not);
its rate per token (or signed-in user) is `API_THROTTLE_RATES[scope]` and per client address
`API_THROTTLE_IP_RATES[scope]`, read at each request so that tests and operators can change them.
A scope without a rate, or a view without a scope, is not throttled. Over the rate, DRF answers
429 `throttled` with `Retry-After`.

Wrong bearer tokens are counted per client address (`AuthFailureThrottle`): past
`API_AUTH_FAILURE_RATE`, every bearer token from that address is refused until the window passes,
so guessing tokens is as slow as the rate.
"""

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.http import HttpRequest
from rest_framework.exceptions import Throttled
from rest_framework.throttling import SimpleRateThrottle

if TYPE_CHECKING:  # DRF's views import the authentication classes, which import this module
    from rest_framework.views import APIView


def throttle_scope_of(request: HttpRequest, view: "APIView") -> str | None:
    """The scope a view names for this request's method, if any."""
    scopes: dict[str, str] = getattr(view, "throttle_scopes", {})
    return scopes.get(request.method or "", getattr(view, "throttle_scope", None))


class _ScopedThrottle(SimpleRateThrottle):
    rates_setting = ""
    cache_format = "throttle:%(scope)s:%(ident)s"

    def __init__(self) -> None:
        # The rate depends on the view; SimpleRateThrottle would read it here, before it is known.
        self.rate: str | None = None

    def allow_request(self, request: Any, view: "APIView") -> bool:
        self.scope = throttle_scope_of(request, view)
        rates: dict[str, str] = getattr(settings, self.rates_setting)
        self.rate = rates.get(self.scope) if self.scope else None
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)


class TokenRateThrottle(_ScopedThrottle):
    """Per API token, or per signed-in user for the session API; anonymous requests are not counted."""

    rates_setting = "API_THROTTLE_RATES"

    def get_cache_key(self, request: Any, view: "APIView") -> str | None:
        token_pk = getattr(request.auth, "pk", None)
        if token_pk is not None:
            ident = f"token-{token_pk}"
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}


class IpRateThrottle(_ScopedThrottle):
    """Per client address (REMOTE_ADDR, or X-Forwarded-For behind TRUSTED_PROXY_COUNT proxies)."""

    rates_setting = "API_THROTTLE_IP_RATES"

    def get_cache_key(self, request: Any, view: "APIView") -> str | None:
        return self.cache_format % {"scope": f"{self.scope}-ip", "ident": self.get_ident(request)}


class AuthFailureThrottle(SimpleRateThrottle):
    """Wrong bearer tokens per client address: checked before a token is looked up, counted after a
    wrong one, so right tokens never use the allowance."""

    scope = "auth_failure"
    cache_format = "throttle:auth-failure:%(ident)s"

    def __init__(self) -> None:
        self.rate = settings.API_AUTH_FAILURE_RATE
        limit, window = self.parse_rate(self.rate)
        assert limit is not None and window is not None  # the setting is always a rate
        self.num_requests, self.duration = self.limit, self.window = limit, window

    def get_cache_key(self, request: Any, view: "APIView | None") -> str:
        return self.cache_format % {"ident": self.get_ident(request)}

    def refuse_if_exceeded(self, request: Any) -> None:
        """Raise 429 while this address has used up its wrong tokens for the window."""
        self.key = self.get_cache_key(request, None)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.window:
            self.history.pop()
        if len(self.history) >= self.limit:
            raise Throttled(wait=self.wait(), detail="Too many wrong API tokens from this address.")

    def record_failure(self) -> None:
        """Count one wrong token (after `refuse_if_exceeded` read the window)."""
        self.throttle_success()
