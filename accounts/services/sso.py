"""Single sign-on: the audit rows of linking and unlinking a provider's account (allauth's flows do
the linking, hooked by accounts/adapters.py; requiring a provider is `organization_sso_require`)."""

from django.db import transaction

from accounts.models import User
from accounts.services.audit import audit_record


@transaction.atomic
def sso_link_record(*, user: User, provider: str, uid: str, linked: bool, ip: str) -> None:
    """A provider's account linked to (`sso.link`) or unlinked from (`sso.unlink`) a user."""
    action = "sso.link" if linked else "sso.unlink"
    audit_record(actor=user, action=action, obj=user, after={"provider": provider, "uid": uid, "ip": ip})
