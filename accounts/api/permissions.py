"""DRF permissions by role in the organization the request acts in, and by staff role, each limited
by the scopes of the API token the request comes with.

Every permission here is a `ScopedPermission`: before its own rule it refuses (403 `scope`) a token
without the scope the operation needs. A view names that scope with `token_scope` (one for every
method, or a dict by method); otherwise reading (GET, HEAD, OPTIONS) needs `read` and anything else
`book`. Requests signed in by session have no token and no scopes to check.
"""

from typing import TYPE_CHECKING

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from accounts.choices import (
    ROLES_THAT_BOOK,
    ROLES_THAT_MANAGE_MEMBERS,
    ROLES_THAT_PAY,
    ROLES_THAT_SEE_INVOICES,
    TokenScope,
)
from accounts.models import ApiToken, Organization, User
from accounts.selectors.organizations import role_in
from accounts.selectors.sso import sso_unmet
from accounts.selectors.staff import is_staff_admin, is_staff_finance, staff_without_mfa
from accounts.selectors.viewer import current_organization
from accounts.services.refusals import MfaRequired, SsoRequired, TokenScopeMissing

if TYPE_CHECKING:  # DRF's views import the default permission, IsSignedIn, from this module
    from rest_framework.views import APIView


class AuthenticatedRequest(Request):
    """The request an API view receives once authentication and a permission below let it in."""

    user: User


class OrganizationRequest(AuthenticatedRequest):
    """The request of a view guarded by an organization role: the organization it acts in is set."""

    organization: Organization


def scope_needed(request: Request, view: "APIView") -> str:
    """The token scope this request to this view needs."""
    declared: str | dict[str, str] | None = getattr(view, "token_scope", None)
    if isinstance(declared, dict):
        declared = declared.get(request.method or "")
    if declared:
        return declared
    return TokenScope.READ if request.method in SAFE_METHODS else TokenScope.BOOK


class ScopedPermission(BasePermission):
    """A permission that first holds a token to its scopes, then applies its own rule (`allows`)."""

    def has_permission(self, request: Request, view: "APIView") -> bool:
        token = request.auth
        if isinstance(token, ApiToken):
            needed = scope_needed(request, view)
            if needed not in token.scopes:
                raise TokenScopeMissing(needed=needed, scopes=token.scopes)
        return self.allows(request, view)

    def allows(self, request: Request, view: "APIView") -> bool:
        raise NotImplementedError


class IsSignedIn(ScopedPermission):
    """Anyone signed in or holding a token (the API's default)."""

    def allows(self, request: Request, view: "APIView") -> bool:
        return bool(request.user and request.user.is_authenticated)


class _OrganizationRole(ScopedPermission):
    roles: set[str] = set()
    message = "Your role in this organization does not allow this."

    def allows(self, request: Request, view: "APIView") -> bool:
        organization = current_organization(request)
        if organization is None or not isinstance(request.user, User):
            self.message = "Act in an organization: use a token made for one, or join one first."
            return False
        request.organization = organization  # type: ignore[attr-defined]
        if _role(request, organization) not in self.roles:
            return False
        require_sso(request, organization)
        return True


def _role(request: Request, organization: Organization) -> str | None:
    token = request.auth
    # A token's own read carried the role in its organization (api_token_authenticate).
    if isinstance(token, ApiToken) and token.organization_id == organization.pk:
        carried: str | None = getattr(token, "member_role", "")
        if carried != "":
            return carried
    assert isinstance(request.user, User)
    return role_in(request.user, organization)


def require_sso(request: Request, organization: Organization | None) -> None:
    """Refuse (403 `sso_required`) a request that has not met its organization's single sign-on."""
    provider = sso_unmet(request, organization)
    if provider is not None and organization is not None:
        token = isinstance(request.auth, ApiToken)
        raise SsoRequired(organization=organization.name, provider=provider, token=token)


class CanBook(_OrganizationRole):
    """Owners and members book, extend and release leases."""

    roles = set(ROLES_THAT_BOOK)


class CanSeeInvoices(_OrganizationRole):
    """Owners and finance members see the organization's invoices."""

    roles = set(ROLES_THAT_SEE_INVOICES)


class CanPay(_OrganizationRole):
    """Owners add the card, top up and set spend limits."""

    roles = set(ROLES_THAT_PAY)


class IsOwner(_OrganizationRole):
    """Owners manage members, tokens and read the organization's audit trail."""

    roles = set(ROLES_THAT_MANAGE_MEMBERS)
    message = "Only an owner of the organization may do this."


class IsStaffAdmin(ScopedPermission):
    """Staff admins run the fleet (with a second factor: 403 `mfa_required` until they have one)."""

    def allows(self, request: Request, view: "APIView") -> bool:
        _refuse_staff_without_mfa(request)
        return is_staff_admin(request.user)


class IsStaffFinance(ScopedPermission):
    """Staff finance see every organization's money (with a second factor, as above)."""

    def allows(self, request: Request, view: "APIView") -> bool:
        _refuse_staff_without_mfa(request)
        return is_staff_finance(request.user)


def _refuse_staff_without_mfa(request: Request) -> None:
    if staff_without_mfa(request.user):
        raise MfaRequired()


class CanSeeMoney(ScopedPermission):
    """Staff finance, or an owner or finance member of the organization the request acts in."""

    message = CanSeeInvoices.message

    def allows(self, request: Request, view: "APIView") -> bool:
        if IsStaffFinance().allows(request, view):
            return True
        check = CanSeeInvoices()
        allowed = check.allows(request, view)
        self.message = check.message
        return allowed


class CanSeeUsage(ScopedPermission):
    """Every member of the organization sees its usage."""

    def allows(self, request: Request, view: "APIView") -> bool:
        return CanBook().allows(request, view) or CanSeeInvoices().allows(request, view)
