"""Accounts made outside sign-up (operators' commands, the demo), and the audit rows of signing in.

Sign-up, log-in and verification themselves are django-allauth's flows; accounts/adapters.py hooks
them to the services here.
"""

from allauth.account.models import EmailAddress
from django.db import transaction

from accounts.models import User
from accounts.services.audit import audit_record


@transaction.atomic
def user_create(
    *,
    email: str,
    password: str | None = None,
    full_name: str = "",
    email_verified: bool = False,
    is_staff: bool = False,
    is_finance_staff: bool = False,
    is_superuser: bool = False,
) -> User:
    """A user with their address as allauth's primary email, verified only when the caller vouches for it."""
    user = User.objects.create_user(
        email,
        password,
        full_name=full_name,
        is_staff=is_staff,
        is_finance_staff=is_finance_staff,
        is_superuser=is_superuser,
    )
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=email_verified)
    audit_record(
        actor=None,
        action="user.create",
        obj=user,
        after={"email": user.email, "email_verified": email_verified},
    )
    return user


@transaction.atomic
def login_record(*, user: User, method: str, ip: str) -> None:
    """A successful log-in (password, passkey, SSO or sign-up), with how and from where."""
    audit_record(actor=user, action="user.login", obj=user, after={"method": method, "ip": ip})


@transaction.atomic
def logout_record(*, user: User, ip: str) -> None:
    """A log-out: the end of a session that `user.login` began."""
    audit_record(actor=user, action="user.logout", obj=user, after={"ip": ip})


@transaction.atomic
def mfa_change_record(*, user: User, action: str, kind: str, ip: str) -> None:
    """A second factor added (`mfa.add`), removed (`mfa.remove`) or renewed (`mfa.reset`: new
    recovery codes), or a wrong code given at sign-in (`user.mfa_failed`)."""
    audit_record(actor=user, action=action, obj=user, after={"type": kind, "ip": ip})


@transaction.atomic
def login_failure_record(*, email: str, ip: str) -> None:
    """A wrong password for an existing account.

    Attempts on addresses with no account are not written: nobody's account was at risk, and every
    row would be a stranger's typing kept forever in an append-only table (the per-IP limit bounds them).
    """
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is not None:
        audit_record(actor=None, action="user.login_failed", obj=user, after={"ip": ip})
