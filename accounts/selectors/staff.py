"""Who is staff, written once: staff admins run the fleet and approvals, staff finance see all money."""

from django.contrib.auth.models import AnonymousUser

from accounts.models import User


def is_staff_admin(user: User | AnonymousUser) -> bool:
    """Staff admins approve programs and quotas, manage the fleet and drain nodes."""
    return bool(user.is_authenticated and user.is_staff)


def is_staff_finance(user: User | AnonymousUser) -> bool:
    """Staff finance close months and see every organization's invoices and revenue."""
    return bool(user.is_authenticated and (user.is_finance_staff or user.is_superuser))


def is_staff(user: User | AnonymousUser) -> bool:
    """Either staff role: may act outside any organization."""
    return is_staff_admin(user) or is_staff_finance(user)
