"""Reads scoped to the requesting user: the one place tenant scoping lives for accounts."""

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from accounts.choices import ApplicationStatus, Role
from accounts.models import (
    ApiToken,
    EarlyStageApplication,
    Invitation,
    Membership,
    Organization,
    SshKey,
    User,
)


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


def ssh_keys_of(user: User) -> QuerySet[SshKey]:
    """The user's SSH keys."""
    return SshKey.objects.filter(user=user).order_by("name")


def ssh_key_of_user_or_404(user: User, public_id: str) -> SshKey:
    """One of the user's keys; anybody else's id is a 404."""
    return get_by_public_id_or_404(ssh_keys_of(user), public_id)


def api_tokens_of(user: User) -> QuerySet[ApiToken]:
    """The user's API tokens, newest first."""
    return ApiToken.objects.filter(user=user).select_related("organization").order_by("-created_at")


def api_token_of_user_or_404(user: User, public_id: str) -> ApiToken:
    """One of the user's tokens; anybody else's id is a 404."""
    return get_by_public_id_or_404(api_tokens_of(user), public_id)


def membership_in_org_or_404(organization: Organization, public_user_email: str) -> Membership:
    """A membership of the organization by the member's email."""
    membership = members_of(organization).filter(user__email=public_user_email).first()
    if membership is None:
        raise Http404("No such member.")
    return membership


def owners_of(organization: Organization) -> QuerySet[User]:
    """The organization's owners, who receive its notices."""
    return User.objects.filter(memberships__organization=organization, memberships__role=Role.OWNER)


def get_by_public_id_or_404(queryset: QuerySet, public_id: object):  # type: ignore[no-untyped-def]
    """The row of `queryset` with this public id; a malformed or foreign id is a 404."""
    try:
        return queryset.get(public_id=public_id)
    except (queryset.model.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("Not found.") from None


def early_stage_applications_of(organization: Organization) -> QuerySet[EarlyStageApplication]:
    """The organization's own applications, newest first."""
    return EarlyStageApplication.objects.filter(organization=organization).order_by("-submitted_at")


def early_stage_queue() -> QuerySet[EarlyStageApplication]:
    """Applications waiting for staff, oldest first."""
    pending = EarlyStageApplication.objects.filter(status=ApplicationStatus.PENDING)
    return pending.select_related("organization", "submitted_by").order_by("submitted_at")
