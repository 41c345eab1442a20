"""Organizations, their members and invitations."""

import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from accounts.choices import OrganizationKind, Role, SsoProvider
from accounts.models import GPU_QUOTA_MAX, Invitation, Membership, Organization, SshKey, User
from accounts.selectors.auth import email_belongs_to, email_is_verified
from accounts.selectors.sso import sso_linked, sso_providers_on
from accounts.services.audit import audit_record
from accounts.services.refusals import (
    InvitationEmailUnverified,
    InvitationForAnotherAddress,
    SsoProviderOff,
)
from accounts.services.ssh_keys import keys_withdraw
from accounts.services.tokens import hash_token


@dataclass(frozen=True)
class IssuedInvitation:
    """A new invitation and the secret in its link, which is never stored."""

    invitation: Invitation
    secret: str

    @property
    def path(self) -> str:
        return reverse("invitation-accept", args=[self.secret])


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def organization_create(
    *,
    owner: User,
    name: str,
    kind: str = OrganizationKind.STARTUP,
    billing_email: str = "",
    gpu_quota: int | None = None,
) -> Organization:
    """Create an organization with `owner` as its first owner."""
    if not name.strip():
        raise ValidationError({"name": "An organization needs a name."})
    organization = Organization.objects.create(
        name=name.strip(),
        slug=_unique_slug(name),
        kind=kind,
        billing_email=billing_email or owner.email,
        **({"gpu_quota": gpu_quota} if gpu_quota is not None else {}),
    )
    Membership.objects.create(user=owner, organization=organization, role=Role.OWNER)
    audit_record(
        actor=owner,
        action="organization.create",
        obj=organization,
        organization=organization,
        after={"name": organization.name, "gpu_quota": organization.gpu_quota},
    )
    return organization


@transaction.atomic
def organization_quota_set(*, actor: User, organization: Organization, gpu_quota: int) -> Organization:
    """Staff set the most GPUs an organization may hold at one instant (bookings check it under the
    organization's row lock, which this takes too)."""
    if not 0 <= gpu_quota <= GPU_QUOTA_MAX:
        raise ValidationError({"gpu_quota": f"A GPU quota is between 0 and {GPU_QUOTA_MAX}."})
    locked = _organization_change(actor, organization, "organization.quota_set", gpu_quota=gpu_quota)
    organization.gpu_quota = gpu_quota
    return locked


def _organization_change(
    actor: User, organization: Organization, action: str, *, no_key: bool = False, **fields: Any
) -> Organization:
    """Set fields on the organization's locked row and audit them, before and after."""
    locked = Organization.objects.select_for_update(no_key=no_key).get(pk=organization.pk)
    before = {name: getattr(locked, name) for name in fields}
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.save(update_fields=list(fields))
    audit_record(actor=actor, action=action, obj=locked, organization=locked, before=before, after=fields)
    return locked


def _require_owner(user: User, organization: Organization) -> None:
    if not Membership.objects.filter(user=user, organization=organization, role=Role.OWNER).exists():
        raise PermissionDenied("Only an owner of the organization may do this.")


@transaction.atomic
def invitation_create(*, actor: User, organization: Organization, email: str, role: str) -> IssuedInvitation:
    """Invite `email` to join `organization` with `role`; the link is emailed and works once."""
    _require_owner(actor, organization)
    email = email.strip().lower()
    if Membership.objects.filter(organization=organization, user__email=email).exists():
        raise ValidationError({"email": f"{email} is already a member of {organization.name}."})
    secret = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        role=role,
        token_hash=hash_token(secret),
        invited_by=actor,
        expires_at=timezone.now() + settings.INVITATION_TTL,
    )
    issued = IssuedInvitation(invitation=invitation, secret=secret)
    audit_record(
        actor=actor,
        action="invitation.create",
        obj=invitation,
        organization=organization,
        after={"email": email, "role": role},
    )
    link = settings.SITE_URL.rstrip("/") + issued.path
    transaction.on_commit(
        lambda: send_mail(
            f"Join {organization.name} on Voltpark",
            f"{actor.email} invited you to {organization.name} as {role}.\n\nAccept: {link}\n"
            f"The link works once and expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC.",
            None,
            [email],
        )
    )
    return issued


@transaction.atomic
def invitation_revoke(*, actor: User, invitation: Invitation) -> None:
    """Withdraw a pending invitation: its link stops working at once; the audit row keeps the record."""
    _require_owner(actor, invitation.organization)
    # Lock the row so a revoke and an accept of the same link cannot both succeed.
    locked = Invitation.objects.select_for_update().filter(pk=invitation.pk).first()
    if locked is None:
        raise ValidationError("This invitation was already revoked.")
    if locked.accepted_at is not None:
        raise ValidationError("This invitation was already accepted; remove the member instead.")
    audit_record(
        actor=actor,
        action="invitation.revoke",
        obj=locked,
        organization=locked.organization,
        before={"email": locked.email, "role": locked.role},
    )
    locked.delete()


@transaction.atomic
def invitation_accept(*, user: User, secret: str) -> Membership:
    """Join the organization of the invitation with this secret; it works once, before it expires,
    and only for a user who has verified the address it was sent to."""
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("organization")
        .filter(token_hash=hash_token(secret))
        .first()
    )
    if invitation is None:
        raise ValidationError("This invitation link is not valid.")
    if invitation.accepted_at is not None:
        raise ValidationError("This invitation has already been used.")
    if invitation.expires_at <= timezone.now():
        raise ValidationError("This invitation has expired; ask the owner for a new one.")
    _require_invited(user, invitation.email)
    membership, _ = Membership.objects.get_or_create(
        user=user, organization=invitation.organization, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(actor=user, action="invitation.accept", obj=invitation, organization=invitation.organization)
    return membership


def _require_invited(user: User, invited: str) -> None:
    # The link alone proves nothing: it may have been forwarded, or opened by whoever is signed in.
    if email_is_verified(user, invited):
        return
    if email_belongs_to(user, invited):
        raise InvitationEmailUnverified(invited=invited)
    raise InvitationForAnotherAddress(invited=invited, signed_in=user.email)


@transaction.atomic
def membership_set_role(*, actor: User, membership: Membership, role: str) -> Membership:
    """Change a member's role; an organization always keeps at least one owner."""
    owners = _lock_owners(membership.organization_id)
    # Checked after the lock: an owner removed or demoted meanwhile has lost the right to do this.
    _require_owner(actor, membership.organization)
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    if locked.role == Role.OWNER and role != Role.OWNER:
        _require_another_owner(locked, owners)
    before = {"role": locked.role}
    locked.role = role
    locked.save(update_fields=["role"])
    audit_record(
        actor=actor,
        action="membership.set_role",
        obj=locked,
        organization=locked.organization,
        before=before,
        after={"role": role},
    )
    return locked


@transaction.atomic
def membership_remove(*, actor: User, membership: Membership) -> None:
    """Remove a member, and their keys from the organization's live leases; the last owner stays."""
    owners = _lock_owners(membership.organization_id)
    # Checked after the lock: an owner removed or demoted meanwhile has lost the right to do this.
    _require_owner(actor, membership.organization)
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    if locked.role == Role.OWNER:
        _require_another_owner(locked, owners)
    audit_record(
        actor=actor,
        action="membership.remove",
        obj=locked,
        organization=locked.organization,
        before={"user": locked.user.email, "role": locked.role},
    )
    # Their keys stop opening the organization's leases; their keys elsewhere are theirs to keep.
    keys = list(SshKey.objects.filter(user_id=locked.user_id).values_list("pk", flat=True))
    keys_withdraw(key_ids=keys, organization=locked.organization, actor=actor)
    locked.delete()


def _lock_owners(organization_id: int) -> list[int]:
    """Lock every owner row (in one order, before the row to change) and return their ids.

    Two owners demoting or removing each other at once then queue; the second sees the first's
    change. (A `.count()` would not lock: Django drops FOR UPDATE from an aggregate.)
    """
    owners = Membership.objects.select_for_update().filter(organization_id=organization_id, role=Role.OWNER)
    return list(owners.order_by("pk").values_list("pk", flat=True))


def _require_another_owner(membership: Membership, owners: list[int]) -> None:
    if not [pk for pk in owners if pk != membership.pk]:
        raise ValidationError({"role": "An organization must keep at least one owner."})


@transaction.atomic
def organization_set_whole_node_sudo(
    *, actor: User, organization: Organization, enabled: bool
) -> Organization:
    """An owner lets (or stops letting) whole-node leases' accounts use sudo; from their next start."""
    _require_owner(actor, organization)
    return _organization_change(
        actor, organization, "organization.whole_node_sudo", no_key=True, whole_node_sudo=enabled
    )


@transaction.atomic
def organization_sso_require(*, actor: User, organization: Organization, provider: str) -> Organization:
    """Require members to sign in with `provider` ("" to stop requiring one).

    Only a provider that is switched on and that the owner has linked themselves: an owner cannot lock
    the organization, themselves included, behind a sign-in nobody can do. Requiring a provider (or a
    different one) restarts `sso_required_since`, so API tokens made before stop answering.
    """
    locked = Organization.objects.select_for_update().get(pk=organization.pk)
    _require_owner(actor, locked)
    if provider and provider not in sso_providers_on():
        raise SsoProviderOff(f"Sign-in with {_label(provider)} is not switched on for Voltpark.")
    if provider and not sso_linked(actor, provider):
        raise SsoProviderOff(
            f"Link your own {_label(provider)} account first (sign in with it), then require it."
        )
    before = {"sso_provider": locked.sso_provider}
    if provider != locked.sso_provider:
        locked.sso_provider = provider
        locked.sso_required_since = timezone.now() if provider else None
        locked.save(update_fields=["sso_provider", "sso_required_since"])
        audit_record(
            actor=actor,
            action="organization.sso_require",
            obj=locked,
            organization=locked,
            before=before,
            after={"sso_provider": provider},
        )
    return locked


def _label(provider: str) -> str:
    return SsoProvider(provider).label if provider in SsoProvider.values else repr(provider)
