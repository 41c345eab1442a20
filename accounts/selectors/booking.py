"""Why a user may not book yet, asked in one place: `booking_blockers`, which clusters' `lease_book`
and the booking page both call. Each check named in settings.BOOKING_BLOCKERS answers a refusal or
None, so an app above clusters (billing) adds its own precondition there without clusters importing it.
"""

from django.conf import settings
from django.urls import reverse
from django.utils.module_loading import import_string

from accounts.models import Organization, User
from accounts.selectors.auth import email_is_verified
from core.refusals import Refused


class EmailUnverified(Refused):
    """The user has not shown that their email address is theirs; booking spends real money."""

    code = "email_unverified"
    status = 403

    def __init__(self, *, email: str) -> None:
        where = settings.SITE_URL.rstrip("/") + reverse("account_email")
        super().__init__(
            f"Verify your email address {email} before booking: open the link in the email we sent you, "
            f"or send a new one from {where}.",
            email=email,
        )


def email_unverified(*, user: User, organization: Organization) -> Refused | None:
    """Refused until the address the user logs in with is verified."""
    return None if email_is_verified(user) else EmailUnverified(email=user.email)


def booking_blockers(*, user: User, organization: Organization) -> list[Refused]:
    """Every reason `user` may not book for `organization` now, in settings order; empty when they may."""
    checks = [import_string(path) for path in settings.BOOKING_BLOCKERS]
    found = (check(user=user, organization=organization) for check in checks)
    return [refusal for refusal in found if refusal is not None]
