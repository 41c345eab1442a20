"""Reads of a user's SSH keys."""

from django.db.models import QuerySet

from accounts.models import Organization, SshKey, User
from core.db import get_by_public_id_or_404


def ssh_keys_of(user: User) -> QuerySet[SshKey]:
    """The user's SSH keys."""
    return SshKey.objects.filter(user=user).order_by("name")


def ssh_key_of_user_or_404(user: User, public_id: str) -> SshKey:
    """One of the user's keys; anybody else's id is a 404."""
    return get_by_public_id_or_404(ssh_keys_of(user), public_id)


def ssh_keys_of_organization(organization: Organization) -> QuerySet[SshKey]:
    """The keys of the organization's members: what may be added to its leases."""
    return (
        SshKey.objects.filter(user__memberships__organization=organization)
        .select_related("user")
        .order_by("user__email", "name", "pk")
    )
