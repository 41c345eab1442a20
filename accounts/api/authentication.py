"""DRF authentication by `Authorization: Bearer <token>`."""

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import ApiToken, User
from accounts.services.tokens import api_token_authenticate
from core.throttles import AuthFailureThrottle


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Accepts a Voltpark API token; the request then acts as its user in its organization."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0] != self.keyword:
            return None
        # Guessing tokens is slowed per client address: past the rate of wrong ones, every bearer
        # token from the address is refused (429) until the window passes.
        failures = AuthFailureThrottle()
        failures.refuse_if_exceeded(request)
        if len(parts) != 2:
            failures.record_failure()
            raise exceptions.AuthenticationFailed("Send the header as 'Authorization: Bearer <token>'.")
        token = api_token_authenticate(parts[1])
        if token is None:
            failures.record_failure()
            raise exceptions.AuthenticationFailed("The API token is not valid or has been revoked.")
        if token.is_expired:
            expired = f"The API token expired at {token.expires_at:%Y-%m-%d %H:%M} UTC; make a new one."
            raise exceptions.AuthenticationFailed(expired, code="token_expired")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
