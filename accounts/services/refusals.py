"""Why an accounts service refused: each carries its code and its status."""

from django.conf import settings
from django.urls import reverse

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
