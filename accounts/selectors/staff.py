"""Who is staff, written once: staff admins run the fleet and approvals, staff finance see all money.

Either role counts only once the person has a second factor (an authenticator app or a passkey):
without one, no staff page, staff API or staff scope answers them, and `staff_without_mfa` tells
the guards to send them to set it up.
"""

from allauth.mfa.models import Authenticator
from django.contrib.auth.models import AnonymousUser

from accounts.models import User

SECOND_FACTORS = (Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)
_MEMO = "_voltpark_has_second_factor"


def is_staff_admin(user: User | AnonymousUser) -> bool:
    """Staff admins approve programs and quotas, manage the fleet and drain nodes."""
    return _holds_staff_admin(user) and has_second_factor(user)


def is_staff_finance(user: User | AnonymousUser) -> bool:
    """Staff finance close months and see every organization's invoices and revenue."""
    return _holds_staff_finance(user) and has_second_factor(user)


def is_staff(user: User | AnonymousUser) -> bool:
    """Either staff role: may act outside any organization."""
    return is_staff_admin(user) or is_staff_finance(user)


def staff_without_mfa(user: User | AnonymousUser) -> bool:
    """Holds a staff role but has no second factor yet: to be sent to set one up."""
    return (_holds_staff_admin(user) or _holds_staff_finance(user)) and not has_second_factor(user)


def has_second_factor(user: User | AnonymousUser) -> bool:
    """An authenticator app or a passkey (recovery codes alone are not one); read once per user object."""
    if not user.is_authenticated:
        return False
    if not hasattr(user, _MEMO):
        found = Authenticator.objects.filter(user_id=user.pk, type__in=SECOND_FACTORS).exists()
        setattr(user, _MEMO, found)
    return bool(getattr(user, _MEMO))


def _holds_staff_admin(user: User | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.is_staff)


def _holds_staff_finance(user: User | AnonymousUser) -> bool:
    return bool(user.is_authenticated and (user.is_finance_staff or user.is_superuser))
