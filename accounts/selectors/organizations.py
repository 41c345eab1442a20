"""Reads of organizations, memberships and invitations, scoped to the requesting user."""

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import Invitation, Membership, Organization, User
from accounts.selectors.auth import user_addresses
from core.db import get_by_public_id_or_404


def organizations_of(user: User) -> QuerySet[Organization]:
    """The organizations `user` is a member of."""
    if not user.is_authenticated:
        return Organization.objects.none()
    return Organization.objects.filter(memberships__user=user).order_by("name")


def memberships_of(user: User) -> QuerySet[Membership]:
    """The user's memberships with their organizations, by organization name (one query)."""
    if not user.is_authenticated:
        return Membership.objects.none()
    return Membership.objects.filter(user=user).select_related("organization").order_by("organization__name")


def membership_of(user: User, organization: Organization) -> Membership | None:
    """The user's membership in the organization, or None."""
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, organization=organization).first()


def role_in(user: User, organization: Organization) -> str | None:
    """The user's role in the organization, or None for outsiders."""
    membership = membership_of(user, organization)
    return membership.role if membership else None


def organization_for_user_or_404(user: User, slug: str) -> Organization:
    """The organization with this slug if `user` belongs to it; 404 for everyone else."""
    organization = organizations_of(user).filter(slug=slug).first()
    if organization is None:
        raise Http404("No such organization.")
    return organization


def members_of(organization: Organization) -> QuerySet[Membership]:
    """The organization's memberships with their users."""
    return organization.memberships.select_related("user").order_by("user__email")


def pending_invitations_of(organization: Organization) -> QuerySet[Invitation]:
    """Invitations not yet accepted."""
    return organization.invitations.filter(accepted_at__isnull=True).order_by("-created_at")


def pending_invitation_of_org_or_404(organization: Organization, public_id: object) -> Invitation:
    """One of the organization's pending invitations; another organization's id is a 404."""
    return get_by_public_id_or_404(pending_invitations_of(organization), public_id)


def membership_in_org_or_404(organization: Organization, public_user_email: str) -> Membership:
    """A membership of the organization by the member's email."""
    membership = members_of(organization).filter(user__email=public_user_email).first()
    if membership is None:
        raise Http404("No such member.")
    return membership


def invitation_with_hash(token_hash: str) -> Invitation | None:
    """The invitation whose link's secret has this hash, with its organization, or None."""
    return Invitation.objects.select_related("organization").filter(token_hash=token_hash).first()


def pending_invitations_for(user: User) -> QuerySet[Invitation]:
    """Invitations addressed to one of the user's addresses, not used and not expired, oldest first."""
    addresses = {user.email.lower(), *(address.lower() for address in user_addresses(user))}
    return (
        Invitation.objects.filter(
            email__in=addresses, accepted_at__isnull=True, expires_at__gt=timezone.now()
        )
        .select_related("organization", "invited_by")
        .order_by("created_at")
    )
