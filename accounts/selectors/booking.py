"""Why a user may not book at all yet (whatever they book): `booking_blockers`, which clusters'
first booking check (`clusters/services/booking.py` `_user_may_book`) raises from and the booking
page shows. Rules about the booking itself, or from apps above clusters (payment), are booking
checks registered with `clusters.services.booking.booking_check`.
"""

from django.conf import settings
from django.urls import reverse

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


def booking_blockers(*, user: User, organization: Organization) -> list[Refused]:
    """Every reason `user` may not book for `organization` yet; empty when they may."""
    blockers: list[Refused] = []
    if not email_is_verified(user):
        blockers.append(EmailUnverified(email=user.email))
    return blockers
