"""API tokens: created once and shown once, stored as a SHA-256 hash, with scopes and an optional
expiry, revocable."""

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from accounts.choices import TokenScope, all_token_scopes
from accounts.models import ApiToken, Membership, Organization, User
from accounts.selectors.staff import is_staff
from accounts.services.audit import audit_record
from accounts.services.refusals import TokenScopeMissing

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
def api_token_create(
    *,
    user: User,
    organization: Organization | None,
    name: str,
    scopes: Iterable[str] | None = None,
    expires_at: datetime | None = None,
    made_with: ApiToken | None = None,
) -> IssuedToken:
    """Issue a token acting as `user` in `organization` (None only for staff), for `scopes` (every
    scope when None) until `expires_at` (never when None).

    A token made through the API with another token (`made_with`) has at most that token's scopes
    and expires no later: a token cannot be used to make a stronger one.
    """
    if organization is None and not is_staff(user):
        raise ValidationError({"organization": "Choose the organization the token acts in."})
    if organization is not None and not organization.memberships.filter(user=user).exists():
        raise ValidationError({"organization": "You are not a member of that organization."})
    chosen = _valid_scopes(all_token_scopes() if scopes is None else scopes)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "Choose an expiry in the future, or none."})
    if made_with is not None:
        _refuse_stronger_than(made_with, scopes=chosen, expires_at=expires_at)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        organization=organization,
        name=name.strip() or "API token",
        prefix=secret[:10],
        token_hash=hash_token(secret),
        scopes=chosen,
        expires_at=expires_at,
    )
    audit_record(
        actor=user,
        action="api_token.create",
        obj=token,
        organization=organization,
        after={"scopes": chosen, "expires_at": expires_at.isoformat() if expires_at else None},
    )
    return IssuedToken(token=token, secret=secret)


def _refuse_stronger_than(made_with: ApiToken, *, scopes: list[str], expires_at: datetime | None) -> None:
    for scope in scopes:
        if scope not in made_with.scopes:
            raise TokenScopeMissing(needed=scope, scopes=made_with.scopes)
    if made_with.expires_at is not None and (expires_at is None or expires_at > made_with.expires_at):
        raise ValidationError(
            {"expires_at": "A token cannot outlive the token that makes it: choose an expiry before it."}
        )


def _valid_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes in their canonical order; none, or one we do not know, is a refusal naming the field."""
    wanted = set(scopes)
    unknown = wanted - set(TokenScope.values)
    if unknown or not wanted:
        raise ValidationError({"scopes": f"Choose one or more of: {', '.join(TokenScope.values)}."})
    return [scope for scope in TokenScope.values if scope in wanted]


@transaction.atomic
def api_token_revoke(*, actor: User, token: ApiToken) -> None:
    """Revoke a token; it is refused from the next request on."""
    if ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        audit_record(actor=actor, action="api_token.revoke", obj=token, organization=token.organization)


def api_token_authenticate(secret: str) -> ApiToken | None:
    """The unrevoked token with this secret (the caller refuses it if it has expired), its last-used
    time refreshed at most once a minute while it is in force."""
    # With its user's role in its organization (`member_role`, None once they left it): the
    # permission that follows reads no membership again.
    role = Membership.objects.filter(user_id=OuterRef("user_id"), organization_id=OuterRef("organization_id"))
    token = (
        ApiToken.objects.select_related("user", "organization")
        .annotate(member_role=Subquery(role.values("role")[:1]))
        .filter(token_hash=hash_token(secret), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None or token.is_expired:
        return token
    now = timezone.now()
    stale_before = now - settings.API_TOKEN_TOUCH_INTERVAL
    if token.last_used_at is None or token.last_used_at < stale_before:
        # A conditional update: concurrent requests touch the row once, not once each.
        ApiToken.objects.filter(pk=token.pk).exclude(last_used_at__gte=stale_before).update(last_used_at=now)
        token.last_used_at = now
    return token
