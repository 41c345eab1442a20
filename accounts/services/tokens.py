"""API tokens: created once and shown once, stored as a SHA-256 hash, revocable."""

import hashlib
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken, Organization, User
from accounts.selectors.staff import is_staff
from accounts.services.audit import audit_record

TOKEN_PREFIX = "vp_"


@dataclass(frozen=True)
class IssuedToken:
    """A freshly created token: the row and the secret, which is never stored."""

    token: ApiToken
    secret: str


def hash_token(secret: str) -> str:
    """SHA-256 of the token; enough for 256-bit random secrets, and fast on every request."""
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def api_token_create(*, user: User, organization: Organization | None, name: str) -> IssuedToken:
    """Issue a token acting as `user` in `organization` (None only for staff)."""
    if organization is None and not is_staff(user):
        raise ValidationError({"organization": "Choose the organization the token acts in."})
    if organization is not None and not organization.memberships.filter(user=user).exists():
        raise ValidationError({"organization": "You are not a member of that organization."})
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        organization=organization,
        name=name.strip() or "API token",
        prefix=secret[:10],
        token_hash=hash_token(secret),
    )
    audit_record(actor=user, action="api_token.create", obj=token, organization=organization)
    return IssuedToken(token=token, secret=secret)


@transaction.atomic
def api_token_revoke(*, actor: User, token: ApiToken) -> None:
    """Revoke a token; it is refused from the next request on."""
    if ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        audit_record(actor=actor, action="api_token.revoke", obj=token, organization=token.organization)


def api_token_authenticate(secret: str) -> ApiToken | None:
    """The live token with this secret, its last-used time refreshed at most once a minute."""
    token = (
        ApiToken.objects.select_related("user", "organization")
        .filter(token_hash=hash_token(secret), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    stale_before = now - settings.API_TOKEN_TOUCH_INTERVAL
    if token.last_used_at is None or token.last_used_at < stale_before:
        # A conditional update: concurrent requests touch the row once, not once each.
        ApiToken.objects.filter(pk=token.pk).exclude(last_used_at__gte=stale_before).update(last_used_at=now)
        token.last_used_at = now
    return token
