"""Why an accounts service refused: each carries its code and its status."""

from django.conf import settings
from django.urls import reverse

from accounts.choices import SsoProvider
from core.refusals import Refused


class InvitationForAnotherAddress(Refused):
    """An invitation is accepted only by the person it was sent to."""

    code = "invitation_email_mismatch"
    status = 403

    def __init__(self, *, invited: str, signed_in: str) -> None:
        super().__init__(
            f"This invitation was sent to {invited}, and you are signed in as {signed_in}. "
            f"Log in with {invited} to accept it.",
        )


class InvitationEmailUnverified(Refused):
    """The invited address is the user's, but they have not shown it yet."""

    code = "email_unverified"
    status = 403

    def __init__(self, *, invited: str) -> None:
        super().__init__(
            f"Verify {invited} first: open the link in the email we sent to it (or send a new one "
            "from your email settings), then accept the invitation.",
        )


class MfaRequired(Refused):
    """Staff act for every customer: a stolen password alone must not be enough."""

    code = "mfa_required"
    status = 403

    def __init__(self) -> None:
        where = settings.SITE_URL.rstrip("/") + reverse("mfa_index")
        super().__init__(
            "Voltpark staff need two-factor authentication (an authenticator app or a passkey) before "
            f"any staff page or staff API answers them: set it up at {where}.",
        )


class TokenScopeMissing(Refused):
    """A token does only what its scopes allow, whatever its user's role allows."""

    code = "scope"
    status = 403

    def __init__(self, *, needed: str, scopes: list[str]) -> None:
        super().__init__(
            f"This API token's scopes ({', '.join(scopes)}) do not include {needed!r}, which this "
            f"needs. Make a token with the {needed!r} scope.",
            needed=needed,
            scopes=scopes,
        )


class SsoRequired(Refused):
    """The organization's owner asks every member to sign in with the organization's provider."""

    code = "sso_required"
    status = 403

    def __init__(self, *, organization: str, provider: str, token: bool) -> None:
        where = settings.SITE_URL.rstrip("/") + reverse("organization-sso")
        name = SsoProvider(provider).label
        how = (
            f"This API token was made before, or its user has not linked {name}: sign in at {where} "
            "and make a new token."
            if token
            else f"Sign in with {name} at {where}."
        )
        super().__init__(f"{organization} requires signing in with {name}. {how}", provider=provider)


class SsoProviderOff(Refused):
    """An organization can only require a provider that is switched on and that its owner has linked."""

    code = "sso_provider_unavailable"
    status = 400
    field = "sso_provider"
